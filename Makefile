# Rebond — every command sets itself up on a fresh machine (Python deps with uv, Java and
# Maven for the embedded Kafka, PostgreSQL from Debian's package for the tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := python3 -m uv
PYTEST_ARGS ?=

.PHONY: help setup run test lint typecheck unit integration e2e faults soak bench schemas demo demo-data clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## install the tools and the locked Python dependencies
	@bash deploy/local/ensure-tools.sh
	@$(UV) sync --locked --quiet --compile-bytecode
	@$(UV) run --locked --quiet python -m compileall -q -j 0 shared services deploy tests > /dev/null

run: setup ## run the whole system locally (embedded Kafka, SQLite) with the Béthune demo
	@$(UV) run --locked python deploy/local/run.py

# `make test` runs the tests in TEST_WORKERS processes (pytest-xdist), each with its own
# broker and database servers: most tests wait on the broker, so two share these two
# cores well. A work unit is a test module, in the order tests/conftest.py gives.
# TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: setup lint typecheck ## lint, type-check, then every test on real Kafka and PostgreSQL
	@REBOND_ALLOW_APT_INSTALL=1 $(UV) run --locked pytest $(XDIST) $(PYTEST_ARGS)

lint: ## ruff
	@$(UV) run --locked ruff check .
	@$(UV) run --locked ruff format --check .

typecheck: ## mypy --strict on the library, the services, the local tools (make run, make demo) and the generators
	@$(UV) run --locked mypy shared services deploy/local deploy/gen

unit: setup ## the fast tests only (no broker, no database)
	@$(UV) run --locked pytest tests/unit $(PYTEST_ARGS)

integration: setup ## tests on the real broker and database
	@REBOND_ALLOW_APT_INSTALL=1 $(UV) run --locked pytest tests/integration $(PYTEST_ARGS)

e2e: setup ## whole services as processes, black-box
	@REBOND_ALLOW_APT_INSTALL=1 $(UV) run --locked pytest tests/e2e $(PYTEST_ARGS)

faults: setup ## the fault suite alone: real processes killed, brokers and databases stopped
	@REBOND_ALLOW_APT_INSTALL=1 $(UV) run --locked pytest tests/faults $(PYTEST_ARGS)

SOAK_ROUNDS ?= 3
SOAK_SCALE ?= 3
soak: setup ## the fault suite, longer: bigger bursts (SOAK_SCALE), several rounds (SOAK_ROUNDS)
	@for round in $$(seq 1 $(SOAK_ROUNDS)); do \
	  echo "[soak] round $$round of $(SOAK_ROUNDS), scale $(SOAK_SCALE)"; \
	  FAULT_SCALE=$(SOAK_SCALE) REBOND_ALLOW_APT_INSTALL=1 $(UV) run --locked pytest tests/faults $(PYTEST_ARGS) || exit 1; \
	  cp bench-results/faults.md bench-results/soak-round-$$round.md; \
	done

bench: setup ## benchmarks; print their figures (never assertions)
	@REBOND_ALLOW_APT_INSTALL=1 $(UV) run --locked python -m tests.bench

schemas: setup ## re-export the events' JSON Schemas (docs/schemas) and AsyncAPI (docs/asyncapi.json)
	@$(UV) run --locked python -m shared.events.schemas export docs/schemas
	@$(UV) run --locked python -m shared.events.asyncapi export docs/asyncapi.json

DEMO_ARGS ?=
demo: setup ## replay the Béthune case through the APIs (uses the running make run, else starts one)
	@$(UV) run --locked python deploy/local/demo.py $(DEMO_ARGS)

demo-data: setup ## rebuild the ti-3205 demo file from the real IREP list (+ generated sites)
	@$(UV) run --locked python services/site_registry/data/build_bethune_demo.py

clean: ## remove local state (.run: embedded Kafka data, SQLite files, logs)
	rm -rf .run
