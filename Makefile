# The two commands of the README. Everything is installed into .venv by the project itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint clean browser-tools registry-tools registry chaos test-concurrency-redis bench-sessions

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/greentic up --bundle examples/demo/greentic.demo.yaml

# The Web Chat test drives Microsoft's official client in Debian's Chromium (fetched with npm).
browser-tools:
	@missing=""; [ -x $(CHROMIUM) ] || missing="chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  command -v apt-get >/dev/null || { echo "install these Debian packages first:$$missing"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The OCI pack tests push to and pull from a real registry: Debian's docker-registry
# (CNCF distribution), started by the tests themselves on a free loopback port.
registry-tools:
	@[ -x /usr/bin/docker-registry ] || { \
	  command -v apt-get >/dev/null || { echo "install the Debian package docker-registry first"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null; \
	}

# A local pack registry on 127.0.0.1:5000 (foreground; Ctrl-C stops it).
registry: registry-tools
	mkdir -p .greentic/registry
	docker-registry serve examples/registry/config.yml

test: $(STAMP) browser-tools registry-tools
	$(BIN)/ruff check shared services tests
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check shared services tests

clean:
	rm -rf $(VENV) .greentic build *.egg-info

# The 4-executor concurrency test (part of `make test`, on JetStream KV) on the Redis backend.
test-concurrency-redis: $(STAMP)
	GREENTIC_CONCURRENCY_BACKEND=redis $(BIN)/pytest -s tests/integration/test_sessions_concurrency.py

bench-sessions: $(STAMP)
	$(BIN)/greentic bench sessions

# The fault suite at the full load (100 chats x 20 messages per fault; `make test` runs it at
# 30 x 10), then the figures table of docs/reliability.md.
chaos: $(STAMP)
	GREENTIC_CHAOS_FULL=1 $(BIN)/pytest -s tests/integration/test_faults.py
	$(BIN)/python -m tests.integration.reliability_report
