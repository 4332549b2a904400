# The two commands of the README. Everything is installed into .venv by the project itself,
# at exactly the versions of requirements/lock.txt (hash-checked); pyproject.toml keeps the
# compatible ranges for people installing the library. See requirements/README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
RUNTIME_LOCK := requirements/runtime.txt
PIP_INSTALL = --progress-bar off --disable-pip-version-check

CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint clean browser-tools registry-tools registry chaos test-concurrency-redis \
	bench-sessions lock lock-upgrade test-latest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip prints every version it installs ("Successfully installed ..."); `pip check` proves the
# locked set is consistent. The locked build tools come first, so the two sdists of the lock
# and the project itself are built by them (no build isolation fetching an unpinned setuptools).
$(STAMP): $(BIN)/python uv.lock $(LOCK) requirements/build.txt pyproject.toml setup.py
	$(BIN)/pip install $(PIP_INSTALL) --require-hashes -r requirements/build.txt
	$(BIN)/pip install $(PIP_INSTALL) --require-hashes --no-build-isolation -r $(LOCK)
	$(BIN)/pip install $(PIP_INSTALL) --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
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

# The lock: uv.lock (uv's project lock, the one source of truth), exported for pip into
# requirements/*.txt; written by a pinned uv (requirements/uv.txt, hash-checked) in its own venv.
# `make lock` keeps every pin that pyproject still allows (run it after editing pyproject);
# `make lock-upgrade` moves every pin to the newest allowed version.
UV_VENV := .greentic/tools/uv
UV := $(UV_VENV)/bin/uv
UV_EXPORT = $(UV) export --quiet --frozen --no-emit-project --format requirements-txt

$(UV): requirements/uv.txt
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install $(PIP_INSTALL) --quiet --require-hashes -r requirements/uv.txt
	touch $(UV)

lock: $(UV)
	$(UV) lock --quiet $(UPGRADE)
	$(UV_EXPORT) --all-extras --all-groups -o $(LOCK)
	$(UV_EXPORT) --group build -o $(RUNTIME_LOCK)
	$(UV_EXPORT) --only-group build -o requirements/build.txt
	$(UV) pip compile --quiet --generate-hashes $(UPGRADE) --custom-compile-command 'make lock' \
	  requirements/uv.in -o requirements/uv.txt

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

# The newest versions pyproject allows, in a venv of their own (.venv-latest), through ruff and
# the whole suite: upgrades are tried on purpose, not found by a red main. What it finds is
# fixed, or pinned with its reason in requirements/README.md.
LATEST := .venv-latest
test-latest: browser-tools registry-tools
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install $(PIP_INSTALL) --upgrade pip
	$(LATEST)/bin/pip install $(PIP_INSTALL) --upgrade --upgrade-strategy eager -e '.[dev]'
	$(LATEST)/bin/pip freeze --exclude-editable
	$(LATEST)/bin/ruff check shared services tests
	$(LATEST)/bin/pytest --deselect \
	  tests/unit/test_dependency_lock.py::test_this_environment_holds_exactly_the_locked_versions
