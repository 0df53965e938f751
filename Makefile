# Two commands take a fresh machine to a running gateway and a passing suite.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?=

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/fixbridge audit keygen --if-missing $(if $(CONFIG),--config $(CONFIG))
	$(BIN)/fixbridge run $(if $(CONFIG),--config $(CONFIG))

# Browser tests drive Debian's Chromium through its ChromeDriver; nothing is downloaded at run time.
BROWSER := /usr/bin/chromium /usr/bin/chromedriver

$(BROWSER):
	@if [ "$$(id -u)" != 0 ]; then echo "make test needs chromium and chromium-driver: sudo apt-get install chromium chromium-driver" >&2; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

test: lint $(BROWSER)
	$(BIN)/pytest -q

# Lint rules, formatting and types (mypy: strict on otc/ and fixspec/, see pyproject.toml).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check gateway fixspec otc tests load
	$(BIN)/ruff format --check gateway fixspec otc tests load
	$(BIN)/mypy

bench: $(VENV)/.installed-dev
	$(BIN)/python -m load.bench_orders

clean:
	rm -rf $(VENV) var .pytest_cache
