# Avara Viewer: `make run` serves a demo on http://127.0.0.1:8000, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_VERSION = $(shell ls /etc/postgresql 2>/dev/null | head -n1)

.PHONY: install run test test-deps lint fuzz bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python server/pyproject.toml sdk/pyproject.toml
	$(BIN)/pip install --quiet -e ./server -e ./sdk
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed server/pyproject.toml sdk/pyproject.toml
	$(BIN)/pip install --quiet -e './server[test]' -e './sdk[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/avara-viewer migrate
	$(BIN)/avara-viewer demo
	$(BIN)/avara-viewer serve --host 127.0.0.1 --port 8000

# The single sign-on tests' OpenID Provider (npm oidc-provider, pinned by its lock file).
PROVIDER := server/tests/sso/provider

$(PROVIDER)/node_modules/.installed: $(PROVIDER)/package.json $(PROVIDER)/package-lock.json
	cd $(PROVIDER) && npm ci --no-audit --no-fund --silent
	touch $@

# Everything the tests need that is not a Python package: Debian's chromium for the browser
# tests, a running PostgreSQL, and the OpenID Provider of the single sign-on tests.
test-deps: $(VENV)/.test-installed $(PROVIDER)/node_modules/.installed
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@pg_isready -h 127.0.0.1 -p 5432 -q || { \
		echo "Starting PostgreSQL $(PG_VERSION)"; \
		pg_ctlcluster --skip-systemctl-redirect $(PG_VERSION) main start; \
		for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done; }

# Three pytest workers on this project's 2-core machines: most of a test's time is spent
# waiting for servers, chromium and mail, so a third worker fills the cores. Each worker
# starts its own shared servers; `worksteal` rebalances the long files at the end.
TEST_WORKERS ?= 3

test: test-deps lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal server/tests sdk/tests

lint: $(VENV)/.test-installed
	$(BIN)/ruff check server sdk bench
	$(BIN)/mypy --strict sdk/src

# Benchmarks are not tests: they need a quiet machine and take a few minutes.
bench: $(VENV)/.test-installed
	@command -v wrk >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/pip install --quiet matplotlib
	$(BIN)/python bench/run.py

# The long contract-fuzzing run on SQLite and PostgreSQL (the bounded one is in `make test`);
# its figures go into docs/reliability.md. FUZZ_EXAMPLES sets the examples per operation.
FUZZ_EXAMPLES ?= 500
fuzz: test-deps
	$(BIN)/python bench/reliability/fuzz.py --max-examples $(FUZZ_EXAMPLES)

clean:
	rm -rf $(VENV) .avara-viewer
