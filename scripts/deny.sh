#!/usr/bin/env bash
# The supply-chain gate (`make deny`): cargo-deny's four checks (advisories,
# bans, licenses, sources; see deny.toml) without network, the advisories
# against the RustSec snapshot in ../shared/advisory-db; then `npm audit` of
# the web app's production packages when the npm registry answers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'deny: %s\n' "$*" >&2; }

command -v cargo-deny >/dev/null 2>&1 || {
  log "installing cargo-deny (cargo install cargo-deny --locked)"
  cargo install cargo-deny --locked
}

# cargo-deny reads an advisory database only from a git checkout of its own,
# <db-path>/<last url segment>-<hash of the url> (deny.toml's db-path and
# db-urls; the hash is of "https://github.com/rustsec/advisory-db"), and
# locks and writes beside it, so the read-only snapshot is copied there once,
# and again whenever it changes.
snapshot=${ADVISORY_DB_SNAPSHOT:-../shared/advisory-db}
db_root=$HOME/.cache/poison-pill/advisory-dbs
db=$db_root/advisory-db-3157b0e258782691
[ -d "$snapshot/crates" ] || {
  log "no RustSec snapshot at $snapshot (set ADVISORY_DB_SNAPSHOT to its directory)"
  exit 1
}
# The snapshot's date: SNAPSHOT.txt names it; else its newest advisory's.
taken=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$snapshot/SNAPSHOT.txt" 2>/dev/null | head -n 1 || true)
[ -n "$taken" ] || taken=$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$snapshot/crates" \
  | grep -oE '[0-9-]{10}' | sort | tail -n 1)
stamp="$taken $(cd "$snapshot" && find . -type f -printf '%P %s %T@\n' | sort | cksum)"
if [ "$(cat "$db_root/advisory-db.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  log "copying the RustSec snapshot of $taken into $db"
  mkdir -p "$db_root"
  rm -rf "$db.new" "$db"
  # Its contents into a new directory: the snapshot itself (perhaps reached
  # through a symlink) is never written to.
  mkdir "$db.new"
  cp -R "$snapshot/." "$db.new/"
  chmod -R u+w "$db.new"
  # Committed with the snapshot's own date, and HEAD's file time set to it:
  # cargo-deny takes the newer of the two as the database's age and fails when
  # it exceeds maximum-db-staleness, so the age it sees is the snapshot's.
  export GIT_AUTHOR_DATE="${taken}T00:00:00Z" GIT_COMMITTER_DATE="${taken}T00:00:00Z"
  git -C "$db.new" init -q -b main
  git -C "$db.new" add -A
  git -C "$db.new" -c user.name=deny.sh -c user.email=deny.sh@localhost \
    -c commit.gpgsign=false -c core.hooksPath=/dev/null \
    commit -q -m "RustSec advisory-db snapshot of $taken"
  touch -d "${taken}T00:00:00Z" "$db.new/.git/HEAD"
  mv "$db.new" "$db"
  printf '%s\n' "$stamp" >"$db_root/advisory-db.stamp"
fi
age_days=$(( ($(date -u +%s) - $(date -u -d "$taken" +%s)) / 86400 ))
log "advisories from the RustSec snapshot of $taken ($age_days days old); no fetching"

# cargo-deny's --offline also keeps cargo offline, so the crates of
# deny.toml's target must be in the registry cache: after any build they are,
# and then this fetch needs no network; on a fresh machine it downloads them
# from crates.io.
target=$(sed -n 's/^targets = \["\([^"]*\)"\]$/\1/p' deny.toml)
cargo fetch --locked --target "${target:?deny.toml names no single target}"
# --offline: no advisory fetch; --locked: Cargo.lock as committed. The
# inclusion graphs (who pulls each crate in) run to thousands of lines for the
# duplicate warnings alone: see one with `cargo deny --offline check bans`.
cargo deny --offline --locked --workspace check --show-stats --hide-inclusion-graph

# The web app's production packages. npm audit asks the registry's audit
# endpoint; where that does not answer (no network, or a read-only mirror),
# say so and go on.
if ! command -v npm >/dev/null 2>&1; then
  log "npm audit skipped: npm is not installed"
  exit 0
fi
if ! timeout 15 npm ping --fetch-timeout=10000 --fetch-retries=0 >/dev/null 2>&1; then
  log "npm audit skipped: the npm registry ($(npm config get registry)) does not answer"
  exit 0
fi
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
(cd frontend && timeout 120 npm audit --omit=dev --json) >"$report" 2>/dev/null || status=$?
# An answer has a "metadata" section; an error from the endpoint does not.
answer=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8") || "{}");
  if (r.metadata) { const v = r.metadata.vulnerabilities; console.log(`ok ${v.total} ${r.metadata.dependencies?.prod ?? "?"}`); }
  else console.log(`error ${r.message || r.error?.summary || "no answer"}`);
' "$report" 2>/dev/null || echo "error unreadable answer (exit status $status)")
case $answer in
  error*)
    log "npm audit skipped: the registry's audit endpoint did not answer: ${answer#error }"
    ;;
  "ok 0 "*)
    log "npm audit: no known vulnerabilities in the web app's ${answer#ok 0 } production packages"
    ;;
  *)
    (cd frontend && npm audit --omit=dev) || true
    log "npm audit: vulnerabilities in the web app's production packages (above)"
    exit 1
    ;;
esac
