# Sourced by the benchmarks: a release server on a fresh PostgreSQL database
# and Redis (unique key prefix), limits raised out of the way, on $PORT.
# Defines $BASE, $BIN, $DATABASE_URL and the server's environment, and
# removes everything on exit. Callers set PORT and may add SERVER_ENV.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
BASE="http://127.0.0.1:$PORT"
BIN="$CARGO_TARGET_DIR/release/poison-pill"

scripts/services.sh
command -v wrk >/dev/null 2>&1 || {
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
}

echo "building (release)…" >&2
cargo build --release -q -p poison-pill

db="pp_bench_$$"
work=$(mktemp -d)
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The database is on this machine: no TLS on loopback, as a co-located
# deployment would connect.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=${BENCH_PG_SSLMODE:-disable}"
export REDIS_URL="redis://127.0.0.1:6379" REDIS_KEY_PREFIX="pp-bench-$$:"
export JWT_SECRET="bench-jwt-secret-that-is-long-enough-0123456789"
export BID_SEALING_KEY="KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio="
export RATE_LIMIT_GLOBAL="1000000000/1s" RATE_LIMIT_AUTH="1000000000/1s" RATE_LIMIT_WRITE="1000000000/1s"
export BIND_ADDR="127.0.0.1:$PORT" DATA_DIR="$work" LOG_FORMAT=json RUST_LOG=warn

"$BIN" migrate up >/dev/null
start_server() {
  "$BIN" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && return; sleep 0.1; done
  echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}
