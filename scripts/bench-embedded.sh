#!/usr/bin/env bash
# make bench-embedded: the embedded default (SQLite in DATA_DIR, no Redis)
# on an existing data folder: how soon `/ready` answers after exec, what it
# holds in memory idle, and hot-item bids/s beside PostgreSQL's on the same
# machine (issue 21). BENCH_SMOKE=1: one short run of each, to check the
# benchmark works (CI), not to measure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PORT=${BENCH_PORT:-18083}
BIN="$CARGO_TARGET_DIR/release/poison-pill"
if [ -n "${BENCH_SMOKE:-}" ]; then RUNS=1 IDLE=1 BIDS=200; else RUNS=${BENCH_RUNS:-5} IDLE=${BENCH_IDLE_SECS:-5} BIDS=${BENCH_BIDS:-5000}; fi

echo "building (release)…" >&2
cargo build --release -q -p poison-pill --example bench_bids
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The embedded default: no DATABASE_URL, no REDIS_URL; secrets generated in
# DATA_DIR on the first start; limits out of the benchmark's way.
unset DATABASE_URL REDIS_URL
export DATA_DIR="$work" BIND_ADDR="127.0.0.1:$PORT" LOG_FORMAT=json RUST_LOG=warn
export RATE_LIMIT_GLOBAL="1000000000/1s" RATE_LIMIT_AUTH="1000000000/1s" RATE_LIMIT_WRITE="1000000000/1s"
export JWT_SECRET="bench-jwt-secret-that-is-long-enough-0123456789"
export BID_SEALING_KEY="KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="

# An existing data folder: created, migrated and closed once before timing.
python3 scripts/bench/embedded.py "$BIN" "$PORT" 0 >/dev/null
starts=""
for _ in $(seq 1 "$RUNS"); do
  starts+="$(python3 scripts/bench/embedded.py "$BIN" "$PORT" "$IDLE")"$'\n'
done

hot_bids() { # $1: the server's DATABASE_URL as the load generator opens it
  "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
  DATABASE_URL="$1" BENCH_SERVER_PID="$server" BENCH_BASE_URL="http://127.0.0.1:$PORT" BENCH_BIDS="$BIDS" BENCH_MODES=hot \
    "$CARGO_TARGET_DIR/release/examples/bench_bids"
  kill "$server" && wait "$server" 2>/dev/null || true
  server=""
}
sqlite_hot=$(hot_bids "sqlite://$work/poison-pill.db")

# The same on PostgreSQL and Redis, on this machine, for comparison.
scripts/services.sh >/dev/null
db="pp_bench_embedded_$$"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
pg_url="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
pg_hot=$(DATABASE_URL="$pg_url" REDIS_URL="redis://127.0.0.1:6379" REDIS_KEY_PREFIX="pp-bench-$$:" hot_bids "$pg_url")
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true

python3 - "$starts" "$sqlite_hot" "$pg_hot" <<'PY'
import json, statistics, sys
starts = [json.loads(line) for line in sys.argv[1].splitlines() if line.strip()]
sqlite, pg = (json.loads(sys.argv[i].strip().splitlines()[-1]) for i in (2, 3))
ready = statistics.median(s["ready_ms"] for s in starts)
rss = statistics.median(s["idle_rss_kib"] for s in starts) / 1024
print(f"machine: {open('/proc/cpuinfo').read().count('processor')} CPUs, "
      f"{next(l.split(':')[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))}")
print(f"/ready after exec: median {ready:.0f} ms of {len(starts)} starts "
      f"({', '.join(str(round(s['ready_ms'])) for s in starts)}): "
      f"{'ok' if ready <= 300 else 'MISSED'} (target <= 300 ms)")
print(f"idle RSS: median {rss:.1f} MiB: {'ok' if rss < 40 else 'MISSED'} (target < 40 MiB)")
for name, run in (("SQLite", sqlite), ("PostgreSQL", pg)):
    print(f"hot item on {name}: {run['accepted_per_s']:,.0f} accepted bids/s, p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms; "
          f"load generator {run['generator_cpu']:.2f} CPUs, server {run['server_cpu']:.2f} CPUs")
print(f"SQLite / PostgreSQL: {sqlite['accepted_per_s'] / pg['accepted_per_s']:.2f}x")
PY
