#!/usr/bin/env bash
# make bench-live: live fan-out on one instance (issue 21), with the load
# generator (crates/server/examples/bench_live.rs) on the same machine as the
# server, PostgreSQL and Redis; a fresh server for each mode.
#   sse: 10,000 subscribers of one item: memory per stream, the delay from a
#        bid's 201 to every subscriber's price event (p99 <= 250 ms), and
#        hot-item bids/s while fanning out against bids/s with nobody
#        watching (>= 0.8x);
#   ws:  10,000 idle authenticated sockets: memory per socket, and the delay
#        of an outbid notification after the 201 of the bid that caused it
#        (p99 < 100 ms).
# BENCH_SMOKE=1: a few connections of each, to check the benchmark works
# (CI), not to measure.
set -euo pipefail
PORT=${BENCH_PORT:-18084}
if [ -n "${BENCH_SMOKE:-}" ]; then
  export BENCH_SUBSCRIBERS=40 BENCH_PACED_BIDS=10 BENCH_PACE_PER_S=50 BENCH_LOAD_BIDS=100
  export BENCH_SOCKETS=40 BENCH_NOTIFIED=10
fi
# Every connection is a file: both processes may open as many as allowed.
ulimit -n "$(ulimit -Hn)"
export LIVE_STREAMS_PER_IP=100000
. "$(dirname "$0")/bench/server.sh"
cargo build --release -q -p poison-pill --example bench_live

results=""
for mode in sse ws; do
  start_server
  results+="$(BENCH_SERVER_PID="$server" BENCH_BASE_URL="$BASE" BENCH_MODES="$mode" \
    "$CARGO_TARGET_DIR/release/examples/bench_live")"$'\n'
  kill "$server" && wait "$server" 2>/dev/null || true
  server=""
done

python3 - "$results" <<'PY'
import json, sys
runs = {r["mode"]: r for r in (json.loads(l) for l in sys.argv[1].splitlines() if l.strip())}
cpus = open("/proc/cpuinfo").read().count("processor")
model = next(l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
print(f"machine: {cpus} CPUs, {model}; server, load generator, PostgreSQL and Redis share them")
def verdict(ok): return "ok" if ok else "MISSED"
sse = runs["sse"]
print(f"SSE: {sse['opened']:,} of {sse['subscribers']:,} subscribers open; "
      f"{sse['rss_per_subscriber_kib']:.1f} KiB of server RSS each: {verdict(sse['rss_per_subscriber_kib'] <= 16)} (target <= 16)")
d = sse["paced"]["delay"]
print(f"  paced bids ({sse['paced']['bids']} at {sse['paced']['per_s']}/s): price event after the bid's 201, "
      f"over {d['samples']:,} deliveries: p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, max {d['max_ms']} ms: "
      f"{verdict(d['p99_ms'] <= 250)} (target p99 <= 250)")
d = sse["fanning_out_delay"]
print(f"  hot item while fanning out: {sse['fanning_out_bids_per_s']:,.0f} bids/s against {sse['alone_bids_per_s']:,.0f} "
      f"with nobody watching = {sse['fanning_out_ratio']:.2f}x: {verdict(sse['fanning_out_ratio'] >= 0.8)} (target >= 0.8x); "
      f"bid p99 {sse['fanning_out_p99_bid_ms']} ms; event delay p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms "
      f"(every tenth event, {d['samples']:,} deliveries)")
print(f"  streams cut: {sse['streams_cut']}, streams missing events: {sse['streams_missing_events']}; "
      f"load generator {sse['generator_cpu']:.2f} CPUs, server {sse['server_cpu']:.2f} CPUs (of {cpus})")
ws = runs["ws"]
d = ws["delay"]
print(f"WebSockets: {ws['opened']:,} of {ws['sockets']:,} open; {ws['rss_per_socket_kib']:.1f} KiB of server RSS each: "
      f"{verdict(ws['rss_per_socket_kib'] <= 16)} (target <= 16)")
print(f"  outbid notification after the 201 that caused it ({d['samples']} of {ws['notifications']}): "
      f"p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms: {verdict(d['samples'] > 0 and d['p99_ms'] < 100)} (target p99 < 100); "
      f"load generator {ws['generator_cpu']:.2f} CPUs, server {ws['server_cpu']:.2f} CPUs")
PY
