# roi-metrics: `make demo` to see it run, `make test` to check it. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install image-early stack-up stack-down stack-status lint format schemas rules dashboards test test-unit demo clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# the system packages the stack and the demo need, then the Python environment; the test
# tools (Node.js for Grafana's panel code, Docker for the container tests) come with `install`
$(STAMP): pyproject.toml deploy/local/install.sh
	deploy/local/install.sh --demo
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip
	@# PYTHONWARNINGS: silence setuptools' advice on editable installs, shown to every user
	PYTHONWARNINGS=ignore $(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# Grafana's own panel code (@grafana/data, npm), which the e2e tests run in Node
GRAFANA_JS := tests/node/node_modules/.package-lock.json
TEST_TOOLS := $(VENV)/.test-tools
$(TEST_TOOLS): deploy/local/install.sh $(STAMP)
	deploy/local/install.sh
	touch $@
$(GRAFANA_JS): tests/node/package.json tests/node/package-lock.json $(TEST_TOOLS)
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(TEST_TOOLS) $(GRAFANA_JS) ## Install system packages (Debian), the Python environment and the tests' tools and npm packages

stack-up: install ## Start Kafka, Redis and Prometheus on 127.0.0.1 (idempotent)
	deploy/local/stack.sh up

stack-down: ## Stop the simulator, the exporter, the worker, the local stack and the tests' Docker engine
	deploy/local/docker.sh stop
	deploy/local/roi.sh simulator stop
	deploy/local/roi.sh exporter stop
	deploy/local/roi.sh worker stop
	deploy/local/stack.sh down
	deploy/local/redis-cluster.sh stop

stack-status: ## Say what runs where: the stack, and the worker, exporter and simulator of roi.sh
	@rc=0; deploy/local/stack.sh status || rc=$$?; \
	for part in worker exporter simulator; do deploy/local/roi.sh $$part status || true; done; \
	exit $$rc

lint: install ## ruff, ruff format --check, mypy --strict
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/mypy service/roi_metrics

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix service tests bench
	$(BIN)/ruff format service tests bench

schemas: install ## Regenerate schemas/ (and the wheel's copies) from the contract models
	$(BIN)/python -m roi_metrics.codegen.schemas
	$(BIN)/python -m roi_metrics.codegen.package_data

rules: install ## Regenerate the Prometheus rules (and deploy/kubernetes/) from deploy/prometheus/thresholds.toml
	$(BIN)/python -m roi_metrics.codegen.rules
	$(BIN)/python -m roi_metrics.codegen.kubernetes
	$(BIN)/python -m roi_metrics.codegen.package_data

dashboards: install ## Regenerate grafana/dashboards/*.json from service/roi_metrics/codegen/dashboards.py
	$(BIN)/python -m roi_metrics.codegen.dashboards

test-unit: install ## The pure tests only (a minute, no services)
	$(BIN)/pytest -q -n 2 tests/unit

image-early: install
	@# the container tests' image (root with Debian's docker.io only), built while lint and
	@# the stack start; the suite waits for it, or says why the container tests skip
	@mkdir -p .state && (deploy/local/docker.sh prepare >.state/docker-prepare.log 2>&1 &)

test: install image-early ## Everything: lint, unit, integration (Kafka, Redis), e2e (Prometheus, promtool, Alertmanager), containers
	@# lint while the stack starts; the pure tests on both cores; then the tests of the stack,
	@# one at a time (they time real processes, which a second test on these cores would skew)
	$(MAKE) --no-print-directory -j2 --output-sync=target lint stack-up
	$(BIN)/pytest -q -p no:cacheprovider -n 2 tests/unit
	$(BIN)/pytest -q -p no:cacheprovider --durations=15 tests/e2e tests/integration

demo: $(STAMP) ## Kafka, Redis, Prometheus, worker, exporter, simulator; live figures until Ctrl-C (SCENARIO=degrade)
	deploy/local/demo.sh

clean: stack-down ## Stop the stack and delete its state (Kafka data, Redis AOF, jar cache)
	rm -rf .state
