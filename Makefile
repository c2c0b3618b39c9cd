# The README's first two commands: `make demo` and `make test`. Both build .venv from nothing.
# .venv runs Python 3.13, Lambda's runtime: PYTHON=/path/to/python3.13 if given, else scripts/find-python finds one
# (python3.13 on PATH, pyenv, uv). A .venv built with another Python is built anew.
PYTHON ?=
PYTHON_VERSION := 3.13
FIND_PYTHON = "$$(PYTHON='$(PYTHON)' scripts/find-python)"
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENV_PYTHON_VERSION := $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30
UV ?= $(BIN)/uv
# Locks: hashed, for Lambda's Python on any platform (`make lock` keeps current pins; LOCK_ARGS=--upgrade moves them).
LOCK := $(UV) pip compile --universal --python-version $(PYTHON_VERSION) --generate-hashes \
	--custom-compile-command "make lock" --quiet $(LOCK_ARGS)
export SAM_CLI_TELEMETRY := 0

ifneq ($(VENV_PYTHON_VERSION),$(PYTHON_VERSION))
.PHONY: $(STAMP)
endif

.PHONY: demo test lint typecheck pytest node-test build validate scan dist-check lock bench chaos mutate events clean

# Installs the locks (requirements-dev.txt holds the layer's pins too), then the three distributions editable (the
# library, the test kit, the CLI; compat mode: plain .pth paths, which mypy follows), and puts the layer's folder
# on sys.path as Lambda puts it (/opt/python) for the stack's adapters and the sample jobs, which are the SAM
# app's and in no distribution.
$(STAMP): pyproject.toml testkit/pyproject.toml cli/pyproject.toml requirements-dev.txt layers/shared/requirements.txt
	@if [ -d $(VENV) ] && [ "$(VENV_PYTHON_VERSION)" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) runs Python $(or $(VENV_PYTHON_VERSION),?), not $(PYTHON_VERSION): building it anew"; \
		rm -rf $(VENV); fi
	@python=$(FIND_PYTHON) && echo "$(VENV): $$python" && "$$python" -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --config-settings editable_mode=compat -e . -e testkit -e cli
	echo "$(abspath layers/shared)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/flatfile_jobs_layer.pth"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flatfile-jobs demo

test: lint typecheck build scan node-test dist-check pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/shared testkit cli functions tests bench scripts

# tests/template/test_packaging.py runs `sam build` of the layer: it needs the SAM CLI.
pytest: $(STAMP) $(SAM)
	$(BIN)/pytest -q -p no:cacheprovider

# The library's and the test kit's wheel and sdist (uv build), checked, installed in a clean python3.13 venv
# outside the repo (the layer's hashed lock, then the wheels with --no-index), the README's handler run there.
dist-check: $(STAMP)
	$(BIN)/python scripts/dist_check.py

node-test: $(STAMP)
	cd forwarder && npm ci --silent --no-audit --no-fund && PYTHON=$(abspath $(BIN)/python) npm test

$(SAM):
	@python=$(FIND_PYTHON) && "$$python" -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_VERSION)

validate: $(STAMP) $(SAM)
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint --region us-east-1

# The functions' python3.13 builds and the layer's and the durable worker's (scripts/lambda-build/Makefile) run python3.13 from PATH: .venv's.
build: validate
	PATH="$(abspath $(BIN)):$$PATH" $(SAM) build --region us-east-1

$(CHECKOV):
	@python=$(FIND_PYTHON) && "$$python" -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

# Security scan of template.yaml; .checkov.yaml lists each skipped check with its reason.
scan: $(CHECKOV)
	CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV) --config-file .checkov.yaml

# Regenerates the hashed locks from pyproject.toml's dependencies, requirements-dev.in and the durable worker's
# requirements.in (at the dev lock's versions: the ones the tests run).
lock: $(STAMP)
	$(LOCK) pyproject.toml -o layers/shared/requirements.txt
	$(LOCK) requirements-dev.in pyproject.toml -c layers/shared/requirements.txt -o requirements-dev.txt
	$(LOCK) functions/durable_worker/requirements.in -c requirements-dev.txt -o functions/durable_worker/requirements.txt

bench: $(STAMP)
	$(BIN)/python -m bench

# Each mutation of the product code in tests/mutations.py must make its tests fail (by hand; minutes).
mutate: $(STAMP)
	$(BIN)/python tests/mutations.py

chaos: $(STAMP)
	FLATFILE_JOBS_CHAOS_JOBS=1000 $(BIN)/pytest -q -p no:cacheprovider -m slow tests/functional/test_chaos.py tests/functional/test_parts.py

events: $(STAMP)
	$(BIN)/flatfile-jobs sign-events events

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .ruff_cache forwarder/node_modules
