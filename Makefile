# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install bench

$(BIN)/payee-stream: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/payee-stream

demo: install
	$(BIN)/payee-stream dev

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/match.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/pipeline.py
