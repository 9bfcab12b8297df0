#!/usr/bin/env bash
# make bench-bids: bids over HTTP (issue 4), with the load generator on the
# same machine as the server, PostgreSQL and Redis.
#   hot:    one item, 50 concurrent bidders, >= 10,000 accepted bids
#   spread: 1,000 items, 50 concurrent bidders
# and, when pgbench is installed, the raw bid transaction under pgbench for
# comparison. Targets (issue 21): hot >= 3x the 1-client pgbench rate with
# p99 < 50 ms; spread >= 1.0x the 50-client pgbench rate.
# BENCH_SMOKE=1: a few hundred bids and a short pgbench, to check the
# benchmark works (CI), not to measure.
set -euo pipefail
PORT=${BENCH_PORT:-18081}
if [ -n "${BENCH_SMOKE:-}" ]; then
  export BENCH_BIDS=200 BENCH_ITEMS=20 BENCH_PGBENCH_SECONDS=2
fi
ITEMS=${BENCH_ITEMS:-1000}
# The bid path alone: the notices the bids cause are written to the outbox
# in their transactions, but delivered by a worker elsewhere (as a
# deployment at scale runs `poison-pill worker`). RUN_WORKERS=true measures
# one box doing both (docs/PERFORMANCE.md).
export RUN_WORKERS=${RUN_WORKERS:-false}
. "$(dirname "$0")/bench/server.sh"
. scripts/bench/pgbench.sh
cargo build --release -q -p poison-pill --example bench_bids
start_server

results=$(BENCH_SERVER_PID="$server" BENCH_BASE_URL="$BASE" BENCH_ITEMS="$ITEMS" "$CARGO_TARGET_DIR/release/examples/bench_bids")
kill "$server" && wait "$server" 2>/dev/null || true
server=""
rates=$(pgbench_rates)

python3 - "$results" "$rates" <<'PY'
import json, sys
model = next(l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
cpus = open('/proc/cpuinfo').read().count('processor')
print(f"machine: {cpus} CPUs, {model}; server, load generator, PostgreSQL and Redis share them")
runs = [json.loads(line) for line in sys.argv[1].splitlines() if line.strip()]
rates = dict(line.split() for line in sys.argv[2].splitlines() if line.strip())
rates = {k: float(v) for k, v in rates.items() if v}
one = rates.get("pgbench_1_client_1_item")
spread_key = next((k for k in rates if k.startswith("pgbench_50_clients_") and not k.endswith("_1_item")), None)
for run in runs:
    print(f"{run['mode']:>6}: {run['accepted']:,} accepted bids in {run['seconds']} s = "
          f"{run['accepted_per_s']:,.0f} bids/s ({run['decided_per_s']:,.0f} decided/s, "
          f"{run['too_low']:,} overtaken and re-bid), p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms"
          f"{'  ok' if run['p99_ms'] < 50 else '  p99 MISSED'}; "
          f"load generator {run['generator_cpu']:.2f} CPUs, server {run['server_cpu']:.2f}, "
          f"PostgreSQL {run['database_cpu']:.2f}, Redis {run['redis_cpu']:.2f}, machine {run['machine_cpu']:.2f} of {cpus}")
    if run["mode"] == "hot" and one:
        ratio = run["accepted_per_s"] / one
        print(f"        = {ratio:.2f}x the 1-client pgbench rate ({one:,.0f} tps): "
              f"{'ok' if ratio >= 3 else 'MISSED'} (target >= 3x)")
    if run["mode"] == "spread" and spread_key:
        ratio = run["accepted_per_s"] / rates[spread_key]
        print(f"        = {ratio:.2f}x the 50-client pgbench rate over the items ({rates[spread_key]:,.0f} tps): "
              f"{'ok' if ratio >= 1 else 'MISSED'} (target >= 1x)")
for key, value in rates.items():
    print(f"{key}: {value:,.0f} tps")
PY
