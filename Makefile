# The two commands of the quick start are `make run` and `make test`. Everything installs into a
# project-local virtualenv (.venv) from the lock file (uv.lock); nothing is downloaded at run time.
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_OFFLINE_MODE := true

.PHONY: install run test lint typecheck imports check bench bench-ledger bench-latency clean

$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; sys.exit("runledger needs Python 3.11+") if sys.version_info < (3, 11) else None'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(VENV)/bin/uv sync --frozen --python $(VENV)/bin/python --quiet
	@touch $@

install: $(VENV)/.installed

## Start the whole stack (embedded Postgres, Temporal dev server + web UI, worker, API).
run: install
	$(VENV)/bin/runledger up

## The whole gate: lint, types, import contracts, then every test.
test: install lint typecheck imports
	$(VENV)/bin/python -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

imports: install
	$(VENV)/bin/lint-imports

bench: install
	$(VENV)/bin/python -m bench.run_bench

bench-ledger: install
	$(VENV)/bin/python -m bench.ledger_bench

## Runs at real model latency (a fake provider: 1 s, 100 streamed chunks) against bare Temporal.
bench-latency: install
	$(VENV)/bin/python -m bench.latency_bench $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
