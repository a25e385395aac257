# quotad — developer entry points. `make test` installs everything into .venv and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint demo bench clean

$(BIN)/quotad: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/quotad

install: $(BIN)/quotad

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check quotad tests simulators
	$(BIN)/mypy quotad

demo: install
	$(BIN)/quotad demo

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
