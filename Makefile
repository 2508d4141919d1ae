# Pulse: two commands. `make demo` runs the platform; `make test` proves it.
# Needs only Python 3.11+ and git: everything else is installed into .venv (uv, from PyPI),
# and PostgreSQL comes from the pgserver wheel.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export RUNTIME__DLTHUB_TELEMETRY := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup demo demo-data test lint typecheck unit integration e2e dbt-parse browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Pulse needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	# bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE set (as on many CI images) every
	# dbt, Dagster and pytest process would otherwise compile its imports again (dbt starts in 3.6 s, not 6.1)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@touch $@

dbt-parse: setup
	DBT_LOG_LEVEL_FILE=$${DBT_LOG_LEVEL_FILE:-info} $(BIN)/dbt parse --project-dir dbt_project --profiles-dir dbt_project --quiet

# Debian's chromium for the browser tests; installed only where we may (root with apt-get).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian chromium for the browser tests"; \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)); \
	  else echo "no /usr/bin/chromium and no root apt-get: the browser tests will be skipped"; fi; \
	fi

demo: setup dbt-parse
	$(BIN)/pulse demo

demo-data: setup dbt-parse
	$(BIN)/pulse demo --no-serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The Streamlit app imports its modules script-style (import data), so it is checked from its folder.
typecheck: setup
	$(BIN)/mypy
	$(BIN)/mypy bench/*.py
	cd apps/streamlit && ../../$(BIN)/mypy --config-file ../../pyproject.toml *.py app_pages/*.py

test: setup dbt-parse browser lint typecheck
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

integration: setup dbt-parse
	$(BIN)/pytest tests/integration

e2e: setup dbt-parse browser
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs .mypy_cache .ruff_cache .pytest_cache
