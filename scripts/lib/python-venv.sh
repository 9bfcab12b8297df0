# Sourced by the scripts that make the tests' Python virtualenvs: makes sure
# python3 and its venv module are there (Debian's packages, as root or with
# sudo). Expects a `log` function.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_python_venv() {
  command -v python3 >/dev/null 2>&1 || {
    log "installing python3"
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3 >/dev/null
  }
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    log "installing python3-venv"
    as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
  fi
}
