#!/usr/bin/env bash
# make bench: the accounts benchmark of issue 3, on this machine, with the
# load generator (wrk) on the same machine as the server.
#   1. authenticated GET /api/v1/users/me, 50 connections   (target >= 5000 req/s)
#   2. login throughput vs. the machine's bound: as many argon2id hashes a
#      second as there are cores, each timed while that many run side by
#      side (target >= 90 %; issue 21)
#   3. /health p99 while logins flood the server              (target < 5 ms)
# Each figure is the median of BENCH_RUNS runs (default 3) of BENCH_SECONDS,
# with the share of a CPU the load generator (wrk) used meanwhile.
# The server runs in release mode on PostgreSQL and Redis, limits raised.
# BENCH_SMOKE=1: one short run of each, to check the benchmark works (CI).
set -euo pipefail
PORT=${BENCH_PORT:-18080}
DURATION=${BENCH_SECONDS:-10}
if [ -n "${BENCH_SMOKE:-}" ]; then DURATION=2 BENCH_RUNS=1; fi
. "$(dirname "$0")/bench/server.sh"
cargo build --release -q -p pp-crypto --example hash_time

echo "violet kettle drums at dawn" | "$BIN" admin create-user --email bench@example.com --role user --verified --password-stdin >/dev/null
start_server

token=$(curl -sf -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  --data '{"email":"bench@example.com","password":"violet kettle drums at dawn"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

rps() { awk '/^Requests\/sec:/ {print $2}'; }
# CPU time the hypervisor gave to other guests ("steal", from /proc/stat)
# between two snapshots, as a share of all CPU time: how noisy the machine
# was while a figure was taken.
cpu_times() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }
steal_share() { python3 -c "import sys; t0,s0,t1,s1=map(int,sys.argv[1:]); print(round((s1-s0)/max(t1-t0,1)*100,1))" $1 $2 $3 $4; }
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
# Runs wrk with "$@"; prints its Requests/sec, and appends the CPUs it kept
# busy (user + system time over the run's length) to $work/wrk_cpu.
timed_wrk() {
  local out
  out=$( { TIMEFORMAT='%U %S %R'; time wrk "$@" > "$work/wrk.out"; } 2>&1 )
  python3 -c "import sys; u,s,r=map(float,sys.argv[1:]); print(round((u+s)/r,2))" $out >> "$work/wrk_cpu"
  rps < "$work/wrk.out"
}
RUNS=${BENCH_RUNS:-3}

echo "warming up…" >&2
wrk -t2 -c50 -d3s -H "Authorization: Bearer $token" "$BASE/api/v1/users/me" >/dev/null

# 1. Throughput of an authenticated read. This VM's speed drifts by 10-20 %
#    between runs, so several runs are taken and the median reported.
me_runs=(); me_steals=()
for _ in $(seq 1 "$RUNS"); do
  read -r t0 s0 < <(cpu_times)
  me_runs+=("$(timed_wrk -t2 -c50 -d"${DURATION}s" -H "Authorization: Bearer $token" "$BASE/api/v1/users/me")")
  read -r t1 s1 < <(cpu_times)
  me_steals+=("$(steal_share "$t0" "$s0" "$t1" "$s1")")
done
me_rps=$(median "${me_runs[@]}")
me_cpu=$(median $(cat "$work/wrk_cpu")); : > "$work/wrk_cpu"

# 2. Login throughput, nothing else running, against cores / single-hash time.
#    The VM's speed drifts, so each run is judged against hash timings taken
#    just before and after it; the median of the runs' shares is reported.
#    Beside it, the time of one hash when one runs on every core at once,
#    nothing else running: where the cores contend for a shared cache or
#    memory bandwidth this is longer, and no server can beat cores / it.
cores=$(nproc)
login_runs=(); shares=(); hashes=(); paired=(); paired_shares=(); login_steals=()
for _ in $(seq 1 "$RUNS"); do
  before=$("$CARGO_TARGET_DIR/release/examples/hash_time")
  read -r t0 s0 < <(cpu_times)
  rate=$(timed_wrk -t1 -c16 -d"${DURATION}s" -s scripts/bench/login.lua "$BASE/api/v1/auth/login")
  read -r t1 s1 < <(cpu_times)
  login_steals+=("$(steal_share "$t0" "$s0" "$t1" "$s1")")
  after=$("$CARGO_TARGET_DIR/release/examples/hash_time")
  side_by_side=$("$CARGO_TARGET_DIR/release/examples/hash_time" "$cores")
  hash=$(python3 -c "print(round(($before + $after) / 2, 2))")
  login_runs+=("$rate"); hashes+=("$hash"); paired+=("$side_by_side")
  shares+=("$(python3 -c "print(round($rate / ($cores / ($hash / 1000)) * 100, 1))")")
  paired_shares+=("$(python3 -c "print(round($rate / ($cores / ($side_by_side / 1000)) * 100, 1))")")
done
login_rps=$(median "${login_runs[@]}")
hash_ms=$(median "${hashes[@]}")
login_share=$(median "${shares[@]}")
paired_ms=$(median "${paired[@]}")
paired_share=$(median "${paired_shares[@]}")
login_cpu=$(median $(cat "$work/wrk_cpu"))

# 3. What a user sees during a login flood: a light probe (100 req/s on one
#    connection), not a second load generator, measures /health.
wrk -t1 -c16 -d"$((DURATION + 2))s" -s scripts/bench/login.lua "$BASE/api/v1/auth/login" >/dev/null &
flood=$!
sleep 1
read -r health_p50 health_p99 health_n < <(python3 scripts/bench/probe.py "$BASE/health" "$DURATION" 100)
wait "$flood"

python3 - "$me_rps" "$hash_ms" "$cores" "$login_rps" "$health_p50" "$health_p99" "$health_n" "${me_runs[*]}" "${login_runs[*]}" "$login_share" "${shares[*]}" "$paired_ms" "$paired_share" "${me_steals[*]}" "${login_steals[*]}" "$me_cpu" "$login_cpu" "${paired_shares[*]}" <<'PY'
import sys
model = next(l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
print(f"machine: {open('/proc/cpuinfo').read().count('processor')} CPUs, {model}; server, wrk, PostgreSQL and Redis share them")
me_cpu, login_cpu, paired_shares = float(sys.argv[16]), float(sys.argv[17]), sys.argv[18]
me_rps, hash_ms, cores, login_rps, p50, p99, n = map(float, sys.argv[1:8])
me_runs, login_runs = sys.argv[8], sys.argv[9]
share, shares = float(sys.argv[10]), sys.argv[11]
paired_ms, paired_share = float(sys.argv[12]), float(sys.argv[13])
me_steals, login_steals = sys.argv[14], sys.argv[15]
ceiling = cores / (hash_ms / 1000)
paired_ceiling = cores / (paired_ms / 1000)
rows = [
    ("GET /api/v1/users/me, 50 connections (median)", f"{me_rps:,.0f} req/s  [runs: {me_runs}]", ">= 5,000 req/s", me_rps >= 5000),
    ("single argon2id hash (m=19456 KiB, t=2, p=1), median", f"{hash_ms:.1f} ms -> ceiling {int(cores)} cores / hash = {ceiling:.1f}/s", "", None),
    (f"{int(cores)} hashes side by side, each (median)", f"{paired_ms:.1f} ms -> the machine's bound {int(cores)} cores / hash = {paired_ceiling:.1f}/s", "", None),
    ("login throughput (median)", f"{login_rps:.1f} logins/s = {share:.0f} % of the single-hash ceiling  [runs: {shares} %]", "", None),
    ("login throughput against the machine's bound", f"{paired_share:.0f} %  [runs: {paired_shares} %]", ">= 90 %", paired_share >= 90),
    ("load generator (wrk), CPUs busy (median)", f"/users/me: {me_cpu:.2f}; logins: {login_cpu:.2f}", "", None),
    ("CPU stolen by the host's other guests, per run", f"/users/me: {me_steals} %; logins: {login_steals} %", "", None),
    ("/health during the login flood", f"p50 {p50} ms, p99 {p99} ms ({int(n)} probes)", "p99 < 5 ms", p99 < 5),
]
width = max(len(r[0]) for r in rows)
for name, value, target, ok in rows:
    mark = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"{name:<{width}}  {value:<66} {target}{mark}")
PY
