#!/usr/bin/env bash
# Makes sure the tests' OpenID provider can run: installs its npm packages
# (oidc-provider, pinned by crates/testkit/idp/package-lock.json) with
# `npm ci` when they are missing or older than the lock file. Fast and
# silent when they are there. Needs Node.js 20 or later (the web app's).
set -euo pipefail
cd "$(dirname "$0")/../crates/testkit/idp"
command -v npm >/dev/null 2>&1 || { echo "test-idp: npm (Node.js 20+) is required; scripts/web-tools.sh installs it" >&2; exit 1; }
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "test-idp: installing the test OpenID provider's packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
