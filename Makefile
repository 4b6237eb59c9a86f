# The two commands of the quick start are `make run` and `make test`. Everything installs into a
# project-local virtualenv (.venv) from the lock file (uv.lock); nothing is downloaded at run time.
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_OFFLINE_MODE := true

.PHONY: install browser run test lint typecheck imports check bench bench-ledger bench-latency clean

$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; sys.exit("runledger needs Python 3.11+") if sys.version_info < (3, 11) else None'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(VENV)/bin/uv sync --frozen --python $(VENV)/bin/python --quiet
	@touch $@

install: $(VENV)/.installed

## Debian's Chromium for the dashboard's browser tests (Playwright drives it; its own browser
## download is not used). Installed with apt where apt and root (or passwordless sudo) are
## available; elsewhere the browser tests skip and say why. .ci/run requires it.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if test -x "$(CHROMIUM)" || command -v chromium >/dev/null 2>&1; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: no apt-get here; install Chromium and set RUNLEDGER_TEST_CHROMIUM, or the browser tests skip"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "make browser: apt-get needs root: run 'sudo apt-get install -y chromium' (the browser tests skip until then)"; exit 0; fi; \
	  echo "make browser: installing Debian's chromium with apt-get"; \
	  $$sudo apt-get install -y -qq chromium >/dev/null 2>&1 || { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium; }; \
	fi

## Start the whole stack (embedded Postgres, Temporal dev server + web UI, worker, API).
run: install
	$(VENV)/bin/runledger up

## The whole gate: lint, types, import contracts, then every test.
test: install browser lint typecheck imports
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
