# Two commands matter: `make demo` and `make test`. Every target sets up .venv when missing.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: venv lint format test demo serve bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Tenure needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

test: lint
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/tenure demo --force

serve: $(STAMP)
	$(BIN)/tenure init
	$(BIN)/tenure serve

bench: $(STAMP)
	$(BIN)/python benchmarks/accounts_list.py
	$(BIN)/python benchmarks/sim.py
	$(BIN)/python benchmarks/sim.py --load
	$(BIN)/python benchmarks/hub.py
	$(BIN)/python benchmarks/health.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
