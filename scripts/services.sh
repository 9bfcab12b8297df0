#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1, installing and starting
# them when needed (and the one tool the tests need beside them). Safe to run again and again: it does nothing when both
# already answer.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server redis-tools)
# util-linux's `script`: the tests run the binary on a pseudo-terminal with it.
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

postgres_answers() { pg_isready -h 127.0.0.1 -p 5432 -q; }

if ! postgres_answers; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    log "creating PostgreSQL $version cluster"
    as_root pg_createcluster "$version" main >/dev/null
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do postgres_answers && break; sleep 0.5; done
  postgres_answers || { log "PostgreSQL did not start"; exit 1; }
fi

# The tests connect as postgres over TCP without a password, as on the dev
# machines. A freshly installed cluster asks for one: trust loopback instead.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  hba=$(as_root su postgres -c "psql -Atqc 'show hba_file'")
  log "trusting loopback connections in $hba"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  as_root su postgres -c "psql -Atqc 'select pg_reload_conf()'" >/dev/null
  sleep 1
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /tmp/poison-pill-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" \
    --appendonly no --dir /tmp/poison-pill-redis --logfile /tmp/poison-pill-redis/redis.log
  for _ in $(seq 1 40); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.25; done
  redis-cli -h 127.0.0.1 ping >/dev/null || { log "Redis did not start"; exit 1; }
fi
log "PostgreSQL and Redis answer on 127.0.0.1"
