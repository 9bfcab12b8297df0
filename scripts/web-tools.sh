#!/usr/bin/env bash
# Makes sure the web app's tools are here: its Node packages (npm ci, when
# the lock file changed since the last install) and, with --browser,
# Debian's Chromium for the end-to-end tests (never a downloaded browser).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'web-tools: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v npm >/dev/null 2>&1 || {
  log "installing Node.js and npm"
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
}

stamp=frontend/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ frontend/package-lock.json -nt "$stamp" ]; then
  log "installing the web app's packages (npm ci)"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null 2>&1 || {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  }
fi
