#!/usr/bin/env bash
# Makes sure the SMTP sink of the integration tests can run: a virtualenv
# with aiosmtpd (PyPI, pinned) for scripts/smtp_sink.py, created once; prints
# that virtualenv's python on stdout. Fast and silent when it is already
# there (one python start). pp-testkit's SmtpSink uses the default path, or
# SMTP_SINK_PYTHON when set.
#
# When PyPI cannot be reached and we are root, Debian's python3-aiosmtpd is
# installed instead and the virtualenv sees the system's packages.
#
#   SMTP_SINK_VENV  where the virtualenv lives (default ~/.cache/poison-pill/smtp-venv;
#                   then set SMTP_SINK_PYTHON to the printed path for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

AIOSMTPD_VERSION=1.4.6
VENV=${SMTP_SINK_VENV:-$HOME/.cache/poison-pill/smtp-venv}
PY=$VENV/bin/python
# What the last successful install put there: "pypi 1.4.6" or "debian".
STAMP=$VENV/.pp-smtp-sink

log() { printf 'smtp-sink-venv: %s\n' "$*" >&2; }
. scripts/lib/python-venv.sh
ready() { "$PY" -c 'import aiosmtpd.smtp' >/dev/null 2>&1; }

stamp=$(cat "$STAMP" 2>/dev/null || true)
if { [ "$stamp" = "pypi $AIOSMTPD_VERSION" ] || [ "$stamp" = "debian" ]; } && ready; then
  printf '%s\n' "$PY"
  exit 0
fi

ensure_python_venv

log "creating $VENV with aiosmtpd $AIOSMTPD_VERSION"
rm -rf "$VENV"
python3 -m venv "$VENV"
if "$VENV/bin/pip" install -q --disable-pip-version-check --retries 2 --timeout 20 \
  "aiosmtpd==$AIOSMTPD_VERSION"; then
  printf 'pypi %s\n' "$AIOSMTPD_VERSION" >"$STAMP"
elif [ "$(id -u)" -eq 0 ]; then
  log "PyPI unreachable: installing Debian's python3-aiosmtpd instead"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >/dev/null
  }
  rm -rf "$VENV"
  python3 -m venv --system-site-packages "$VENV"
  printf 'debian\n' >"$STAMP"
else
  log "could not install aiosmtpd from PyPI (and not root for apt-get)"
  exit 1
fi

ready || { log "aiosmtpd does not import in $VENV"; exit 1; }
printf '%s\n' "$PY"
