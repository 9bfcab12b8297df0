#!/usr/bin/env bash
# make fuzz-api: schema-driven API fuzzing (issue 14). Schemathesis (PyPI,
# pinned, in a virtualenv this script creates) runs every check its CLI
# offers against a release build, generated from the server's own OpenAPI
# document, on two targets:
#   embedded  SQLite in a temporary DATA_DIR, no Redis (the embedded default)
#   postgres  a fresh PostgreSQL database on 127.0.0.1:5432 (dropped
#             afterwards) and Redis on 127.0.0.1:6379 (a unique key prefix)
# and on each, four runs:
#   user         every operation but those that check the account's
#                password (POST /auth/password/change, POST and DELETE
#                /auth/mfa/totp), as a user
#   admin        the same, as an admin
#   credentials  POST /auth/login and /auth/password/change, whose
#                schema-valid cases carry a real account's e-mail and
#                current password (followed as the fuzzer changes it)
#   guessing     the operations that check the password, with generated
#                passwords, on an account of its own: wrong guesses count
#                towards its lockout (then 423), so no other run may use
#                that account (the user and admin runs would lock
#                themselves out and fail to log in again)
# Logging out (/auth/logout, /auth/logout-all) is fuzzed like the rest: the
# fuzzer logs in again whenever an answer is a 401 (scripts/fuzz/*.toml).
# Prints the runs and every distinct failure, once (scripts/fuzz/summary.py);
# exits non-zero on any failure. Reports: fuzz-report/ (or FUZZ_REPORT_DIR).
#
#   FUZZ_EXAMPLES   examples per operation and phase   (default 100)
#   FUZZ_TARGETS    which targets, in order              (default "embedded postgres")
#   FUZZ_SEED       schemathesis seed                    (default: a random one, printed)
#   POISON_PILL_BIN a poison-pill binary to use instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${FUZZ_EXAMPLES:-100}
TARGETS=${FUZZ_TARGETS:-embedded postgres}
VENV=${FUZZ_VENV:-$HOME/.cache/poison-pill/fuzz-venv}
REPORT_DIR=${FUZZ_REPORT_DIR:-$ROOT/fuzz-report}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/poison-pill/target}"
BIN=${POISON_PILL_BIN:-$CARGO_TARGET_DIR/release/poison-pill}
FUZZ_DIR=$ROOT/scripts/fuzz

log() { printf 'fuzz-api: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Wall-clock time of each step, printed at the end.
elapsed() { awk -v since="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - since }'; }
steps=()
step_started=$(date +%s.%N)
step_name=""
step() {
  [ -n "$step_name" ] && steps+=("$(printf '%-54s %6s s' "$step_name" "$(elapsed "$step_started")")")
  step_name="$*"
  step_started=$(date +%s.%N)
  [ -n "$step_name" ] && log "$step_name"
  return 0
}
run_started=$(date +%s.%N)

work=$(mktemp -d -t pp-fuzz.XXXXXX)
server=""
db=""
redis_prefix=""
# SIGTERM, then SIGKILL after 5 s: actix finishes open connections first, and
# an event stream whose client hung up lives until its next keep-alive (15 s).
stop_server() {
  [ -n "$server" ] || return 0
  kill "$server" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}
cleanup() {
  stop_server
  if [ -n "$db" ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "$redis_prefix" ]; then
    redis-cli -h 127.0.0.1 --scan --pattern "${redis_prefix}*" 2>/dev/null \
      | xargs -r redis-cli -h 127.0.0.1 del >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- schemathesis, in its own virtualenv -----------------------------------
step "virtualenv with schemathesis $SCHEMATHESIS_VERSION"
if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  command -v python3 >/dev/null 2>&1 || { as_root apt-get update -qq && as_root apt-get install -y -qq python3 >/dev/null; }
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
PY=$VENV/bin/python

# --- the server ---------------------------------------------------------------
if [ -n "${POISON_PILL_BIN:-}" ]; then
  step "using $BIN"
else
  step "release build (cargo build --release -p poison-pill)"
  cargo build --release -q -p poison-pill
fi
[ -x "$BIN" ] || { log "no binary at $BIN"; exit 1; }
case " $TARGETS " in
  *" postgres "*) step "PostgreSQL and Redis (scripts/services.sh)"; scripts/services.sh ;;
esac

rm -rf "$REPORT_DIR"
mkdir -p "$REPORT_DIR"
: >"$REPORT_DIR/runs.tsv"

# json_get FIELD: that field of the JSON on stdin (nothing, and failure, on no input).
json_get() {
  "$PY" -c 'import json, sys; text = sys.stdin.read(); text or sys.exit(1); print(json.loads(text)[sys.argv[1]])' "$1"
}
random_secret() { "$PY" -c "import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))" "$1"; }
at() { date -u -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%SZ; }

# api METHOD PATH TOKEN [JSON]: the answer's body; stops the script on a non-2xx.
api() {
  local out status
  out=$(curl -s --max-time 30 -o "$work/answer" -w '%{http_code}' -X "$1" "$BASE$2" \
    ${3:+-H "Authorization: Bearer $3"} ${4:+-H 'Content-Type: application/json' --data "$4"})
  status=$out
  if [ "${status:0:1}" != 2 ]; then
    log "$1 $2 answered $status: $(cat "$work/answer")"
    exit 1
  fi
  cat "$work/answer"
}

# Every server of a target shares this environment; `env -i` keeps the
# caller's DATABASE_URL, REDIS_URL etc. out, and the server runs in its own
# directory so no `.env` file is read.
server_env=()
base_env() {
  server_env=(
    PATH="$PATH" HOME="$HOME"
    LOG_FORMAT=json RUST_LOG=info
    BIND_ADDR=127.0.0.1:0
    DATA_DIR="$work/$1/data"
    WEB_DIR="$work/$1/no-web-app"
    # Rate limits out of the way (as the API tests do): the fuzzer sends
    # thousands of requests a minute from one address and one account.
    RATE_LIMIT_GLOBAL=1000000000/10s RATE_LIMIT_AUTH=1000000000/60s RATE_LIMIT_WRITE=1000000000/60s
    # Likewise the cap on open event streams per address: the fuzzer hangs up
    # after the first event, and the server notices at the next keep-alive.
    LIVE_STREAMS_PER_IP=100000
    ACCESS_TOKEN_TTL_SECS=3600
  )
}

start_server() {
  local target=$1 logfile="$REPORT_DIR/$1-server.log" port=""
  (cd "$work/$target" && exec env -i "${server_env[@]}" "$BIN" serve) >"$logfile" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    port=$(grep -m1 '"listening' "$logfile" | grep -o '"port":[0-9]*' | cut -d: -f2 || true)
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || { log "the server stopped:"; cat "$logfile" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { log "the server did not say where it listens:"; cat "$logfile" >&2; exit 1; }
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$BASE/health" >/dev/null && return; sleep 0.1; done
  log "the server does not answer /health:"; cat "$logfile" >&2; exit 1
}

# create_account TARGET NAME ROLE: creates NAME@fuzz.test, verified, with a
# random password; sets ${NAME}_id and ${NAME}_password.
create_account() {
  local target=$1 name=$2 role=$3 password out id
  password="fuzz $(random_secret 24)"
  out=$(cd "$work/$target" && printf '%s\n' "$password" \
    | env -i "${server_env[@]}" "$BIN" admin create-user --email "$name@fuzz.test" --role "$role" --verified --password-stdin \
      2>>"$REPORT_DIR/$target-admin.log")
  id=$(sed -n 's/.*(\(.*\)).*/\1/p' <<<"$out")
  [ -n "$id" ] || { log "admin create-user said: $out"; exit 1; }
  printf -v "${name}_id" '%s' "$id"
  printf -v "${name}_password" '%s' "$password"
}

login() {
  api POST /api/v1/auth/login "" "{\"email\":\"$1@fuzz.test\",\"password\":\"$2\"}" | json_get access_token
}

# WFC (Web Fuzzing Commons) auth entries: one that logs in (again after any
# 401), and one with a fixed token.
wfc_login() {
  cat <<EOF
    {"name": "$1", "loginEndpointAuth": {
      "verb": "POST", "endpoint": "/api/v1/auth/login", "contentType": "application/json",
      "payloadUserPwd": {"username": "$1@fuzz.test", "password": "$2", "usernameField": "email", "passwordField": "password"},
      "token": {"extractFrom": "body", "extractSelector": "/access_token",
                "sendIn": "header", "sendName": "Authorization", "sendTemplate": "Bearer {token}"}}}
EOF
}
wfc_token() {
  printf '    {"name": "%s", "fixedHeaders": [{"name": "Authorization", "value": "Bearer %s"}]}\n' "$1" "$2"
}

# fuzz TARGET RUN [schemathesis options…]
fuzz() {
  local target=$1 run=$2 name="$1-$2" status=0 started
  shift 2
  step "fuzzing: $name"
  mkdir -p "$REPORT_DIR/$name"
  started=$(date +%s.%N)
  # In $work: schemathesis keeps its caches (.hypothesis, .schemathesis) in
  # the working directory.
  (cd "$work" && env FUZZ_WFC_FILE="${FUZZ_WFC_FILE:-$work/wfc.json}" \
    FUZZ_PROTECTED_IDS="$user_id,$user2_id,$admin_id,$pw_id,$guess_id" \
    FUZZ_PROTECTED_EMAILS="user@fuzz.test,user2@fuzz.test,admin@fuzz.test,pw@fuzz.test,guess@fuzz.test" \
    SCHEMATHESIS_HOOKS="$FUZZ_DIR/hooks.py" \
    "$VENV/bin/schemathesis" --config-file "$work/schemathesis.toml" --no-color \
    run "$BASE/api/openapi.json" --checks all --max-examples "$EXAMPLES" \
    ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
    --report ndjson,junit \
    --report-ndjson-path "$REPORT_DIR/$name/events.ndjson" \
    --report-junit-path "$REPORT_DIR/$name/junit.xml" \
    "$@") >"$REPORT_DIR/$name/output.txt" 2>&1 || status=$?
  printf '%s\t%s\t%s\n' "$name" "$(elapsed "$started")" "$status" >>"$REPORT_DIR/runs.tsv"
  log "$name: exit $status; $(grep -E '^=+ .* in [0-9.]+s =+$' "$REPORT_DIR/$name/output.txt" | tail -n 1 | tr -d '=' | xargs || true)"
  # A server that died is a failure of its own; the next run gets a new one.
  if ! kill -0 "$server" 2>/dev/null; then
    wait "$server" 2>/dev/null || true
    log "the server died during $name: see $REPORT_DIR/$target-server.log"
    printf '%s\t0\t1\n' "$target-server-died-in-$run" >>"$REPORT_DIR/runs.tsv"
    start_server "$target"
  fi
}

fuzz_target() {
  local target=$1
  step "$target: start the server, accounts and items"
  mkdir -p "$work/$target/data"
  base_env "$target"
  case "$target" in
    embedded) ;;
    postgres)
      db="pp_fuzz_$$"
      redis_prefix="pp-fuzz-$$:"
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
      server_env+=(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
        REDIS_URL=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="$redis_prefix"
        JWT_SECRET="$(random_secret 48)"
        BID_SEALING_KEY="$("$PY" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')"
      )
      ;;
    *) log "unknown target $target (embedded, postgres)"; exit 1 ;;
  esac
  start_server "$target"

  # user: the fuzzer as a user; user2: its peer (object-level authorization);
  # admin: the fuzzer as an admin; pw: the credentials run's account; guess:
  # the guessing run's; target: an account the admin may change at will.
  create_account "$target" user user
  create_account "$target" user2 user
  create_account "$target" admin admin
  create_account "$target" pw user
  create_account "$target" guess user
  create_account "$target" target user
  {
    echo '{"auth": ['
    wfc_login user "$user_password"; echo ','
    wfc_login user2 "$user2_password"; echo ','
    wfc_login admin "$admin_password"; echo ','
    wfc_login guess "$guess_password"
    echo ']}'
  } >"$work/wfc.json"
  # The credentials run changes pw's password as it goes, so its session is
  # a token taken now: a password change keeps the session it is made from.
  {
    echo '{"auth": ['
    wfc_login user "$user_password"; echo ','
    wfc_login user2 "$user2_password"; echo ','
    wfc_token pw "$(login pw "$pw_password")"
    echo ']}'
  } >"$work/wfc-credentials.json"

  # Items, so that real ids exist: one open with the user's bid on it, one
  # open without bids, and one that closes before the fuzzing starts, with a
  # bid of user2's (its bids are revealed, its stream ends).
  local admin_token user_token user2_token open_item bid_item closing_item
  admin_token=$(login admin "$admin_password")
  user_token=$(login user "$user_password")
  user2_token=$(login user2 "$user2_password")
  item() {
    api POST /api/v1/items "$admin_token" \
      "{\"title\":\"$1\",\"description\":\"$2\",\"base_price\":1000,\"close_at\":\"$3\"}" | json_get id
  }
  open_item=$(item "Fuzz open lot" "No bids yet" "$(at 86400)")
  bid_item=$(item "Fuzz bid lot" "The user bid on it" "$(at 86400)")
  closing_item=$(item "Fuzz closing lot" "Closes at once" "$(at 3)")
  api POST "/api/v1/items/$bid_item/bid" "$user_token" '{"amount":1500,"poison":{"budget":5000,"step":100}}' >/dev/null
  api POST "/api/v1/items/$closing_item/bid" "$user2_token" '{"amount":1200}' >/dev/null
  for _ in $(seq 1 100); do
    [ "$(api GET "/api/v1/items/$closing_item" "" | json_get status)" = closed ] && break
    sleep 0.1
  done
  log "$target: $BASE; items $open_item (open), $bid_item (open, a bid), $closing_item ($(api GET "/api/v1/items/$closing_item" "" | json_get status))"

  # The configuration, plus this target's item ids for GET /events/{id}:
  # schemathesis reuses ids it has seen for /api/v1/items/{id}/…, but does
  # not tie /events/{id} to items.
  {
    cat "$FUZZ_DIR/schemathesis.toml"
    cat <<EOF

[dictionaries.items]
values = ["$open_item", "$bid_item", "$closing_item"]

[[operations]]
include-name = "GET /events/{id}"
parameters = { "path.id" = { dictionary = "items", probability = 0.5 } }
EOF
  } >"$work/schemathesis.toml"

  # What checks the account's password: guessed only on the guessing
  # account, which no other run logs in as.
  local guessed=("POST /api/v1/auth/password/change" "POST /api/v1/auth/mfa/totp" "DELETE /api/v1/auth/mfa/totp")
  local own=() guesses=()
  for name in "${guessed[@]}"; do
    own+=(--exclude-name "$name")
    guesses+=(--include-name "$name")
  done
  fuzz "$target" user --auth-wfc-user user "${own[@]}"
  fuzz "$target" admin --auth-wfc-user admin "${own[@]}"
  FUZZ_WFC_FILE="$work/wfc-credentials.json" \
    FUZZ_CREDENTIALS_EMAIL="pw@fuzz.test" FUZZ_CREDENTIALS_PASSWORD="$pw_password" \
    fuzz "$target" credentials --auth-wfc-user pw \
    --include-name "POST /api/v1/auth/login" --include-name "POST /api/v1/auth/password/change"
  fuzz "$target" guessing --auth-wfc-user guess "${guesses[@]}"

  step "$target: stop the server and clean up"
  stop_server
  if [ "$target" = postgres ]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    db=""
    redis-cli -h 127.0.0.1 --scan --pattern "${redis_prefix}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null
    redis_prefix=""
  fi
}

for target in $TARGETS; do
  fuzz_target "$target"
done
step ""

status=0
"$PY" "$FUZZ_DIR/summary.py" "$REPORT_DIR" | tee "$REPORT_DIR/summary.txt" || status=$?
{
  echo
  echo "== API fuzzing: time per step (schemathesis $SCHEMATHESIS_VERSION, $EXAMPLES examples per operation) =="
  printf '%s\n' "${steps[@]}"
  printf '%-54s %6s s\n' "total" "$(elapsed "$run_started")"
  echo "reports: $REPORT_DIR (summary.txt; per run: output.txt, events.ndjson, junit.xml)"
} | tee -a "$REPORT_DIR/summary.txt"
exit "$status"
