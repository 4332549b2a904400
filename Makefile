# The two commands of the README. Everything is installed into .venv by the project itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/greentic up --bundle examples/demo/greentic.demo.yaml

test: $(STAMP)
	$(BIN)/ruff check shared services tests
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check shared services tests

clean:
	rm -rf $(VENV) .greentic build *.egg-info
