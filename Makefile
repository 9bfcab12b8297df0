# Poison Pill — every command a developer or CI needs. `.ci/run` calls these.
SHELL := bash
CARGO ?= cargo
COVERAGE_MIN ?= 80

.PHONY: help run migrate test lint fmt cov bench bench-bids hooks services clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## serve on the embedded default (SQLite and secrets in ./data)
	$(CARGO) run -p poison-pill -- serve

migrate: ## apply pending migrations to DATABASE_URL (default: ./data SQLite)
	$(CARGO) run -p poison-pill -- migrate up

services: ## make sure PostgreSQL and Redis answer (installs/starts them)
	scripts/services.sh

test: services ## every test: unit, property, integration on PostgreSQL and SQLite
	$(CARGO) nextest run --workspace --no-tests=warn

lint: ## formatting and clippy (warnings are errors)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

cov: services ## tests with line coverage; fails under $(COVERAGE_MIN) %
	$(CARGO) llvm-cov nextest --workspace --no-tests=warn \
		--fail-under-lines $(COVERAGE_MIN) --summary-only

bench: ## accounts benchmark: /users/me req/s, login throughput, /health p99 under a login flood
	scripts/bench.sh

bench-bids: ## bids benchmark: hot item and spread over 1,000 items, against pgbench
	scripts/bench-bids.sh

hooks: ## install the pre-push hook (lint + coverage)
	install -m 755 .githooks/pre-push .git/hooks/pre-push

clean: ## remove build output and the embedded default's data
	$(CARGO) clean
	rm -rf data
