# quotad — developer entry points. `make test` installs everything into .venv and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint demo bench bench-quick bench-compare clean

# setup.py and the compiled modules' sources: they are rebuilt when these change.
COMPILED_SOURCES := quotad/radius/_packet.py quotad/radius/_packet.pxd quotad/quota/_resp.py quotad/quota/_resp.pxd
$(BIN)/quotad: pyproject.toml setup.py $(COMPILED_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/quotad

install: $(BIN)/quotad

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check quotad tests simulators
	$(BIN)/mypy quotad simulators

bench: install
	$(BIN)/python -m simulators.bench --workers 2 --seconds 10 --runs 3

bench-quick: install
	$(BIN)/python -m simulators.bench --workers 2 --seconds 2 --runs 1 --lines 2000

# quotad beside FreeRADIUS + Redis and the Python floor (needs freeradius freeradius-redis; ~10 min;
# COMPARE="--seconds 5 --runs 1" for a first look).
COMPARE ?=
bench-compare: install
	$(BIN)/python -m simulators.compare $(COMPARE)

demo: install
	$(BIN)/quotad demo

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache build quotad/radius/*.so quotad/quota/*.so
