#!/usr/bin/env bash
# Makes sure the S3-compatible server of the media tests can run: a
# virtualenv with moto's server mode (PyPI, pinned), created once; prints
# that virtualenv's python on stdout. Fast and silent when it is already
# there (one python start). pp-testkit's S3Server uses the default path, or
# S3_SERVER_PYTHON when set. (MinIO's server binary is not installable on
# these machines; moto speaks the same S3 protocol, signatures included.)
#
#   S3_VENV  where the virtualenv lives (default ~/.cache/poison-pill/s3-venv;
#            then set S3_SERVER_PYTHON to the printed path for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.1.18
VENV=${S3_VENV:-$HOME/.cache/poison-pill/s3-venv}
PY=$VENV/bin/python
STAMP=$VENV/.pp-s3-server

log() { printf 's3-venv: %s\n' "$*" >&2; }
. scripts/lib/python-venv.sh
ready() { "$PY" -c 'import moto.server, flask_cors' >/dev/null 2>&1; }

if [ "$(cat "$STAMP" 2>/dev/null || true)" = "pypi $MOTO_VERSION" ] && ready; then
  printf '%s\n' "$PY"
  exit 0
fi

ensure_python_venv

log "creating $VENV with moto $MOTO_VERSION"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --retries 2 --timeout 30 \
  "moto[s3,server]==$MOTO_VERSION"
printf 'pypi %s\n' "$MOTO_VERSION" >"$STAMP"
ready || { log "moto's server does not import in $VENV"; exit 1; }
printf '%s\n' "$PY"
