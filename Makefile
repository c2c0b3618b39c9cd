# The README's first two commands: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
export PYENV_VERSION := 3.11.7:3.12.1:3.13.0
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test lint typecheck pytest node-test build validate bench chaos mutate events clean

$(STAMP): pyproject.toml requirements-dev.txt layers/shared/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flatfile-jobs demo

test: lint typecheck build node-test pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/shared cli functions tests bench

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

node-test: $(STAMP)
	cd forwarder && npm ci --silent --no-audit --no-fund && PYTHON=$(abspath $(BIN)/python) npm test

$(SAM): 
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_VERSION)

validate: $(STAMP) $(SAM)
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1

build: validate
	$(SAM) build --region us-east-1

bench: $(STAMP)
	$(BIN)/python -m bench

# Each mutation of the product code in tests/mutations.py must make its tests fail (by hand; minutes).
mutate: $(STAMP)
	$(BIN)/python tests/mutations.py

chaos: $(STAMP)
	FLATFILE_JOBS_CHAOS_JOBS=1000 $(BIN)/pytest -q -p no:cacheprovider -m slow tests/functional/test_chaos.py

events: $(STAMP)
	$(BIN)/flatfile-jobs sign-events events

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .ruff_cache forwarder/node_modules
