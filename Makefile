PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-reliability lint typecheck pytest bench clean interop-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smsgw demo

# Independent SMPP peers for tests/interop: PyPI ones come with the test extra ($(STAMP)); the
# npm smpp package is installed from the committed lock file. apt runs only when node or npm
# is missing, and npm ci only when the lock file changed: a second run does nothing.
NODE_PEERS := tests/interop/peers/node
NODE_STAMP := $(NODE_PEERS)/node_modules/.package-lock.json

interop-deps: $(STAMP) $(NODE_STAMP)

$(NODE_STAMP): $(NODE_PEERS)/package.json $(NODE_PEERS)/package-lock.json
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		dpkg -s nodejs npm >/dev/null 2>&1 || apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm; \
	fi
	cd $(NODE_PEERS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: $(STAMP) interop-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

# The reliability suite in full: `make test` runs it too, with the crash test's quick plan
# (2 SIGKILLs per backend); here SMSGW_CRASH_FULL=1 makes it 10, and -s prints its table.
test-reliability: $(STAMP)
	SMSGW_CRASH_FULL=1 $(BIN)/pytest -q -s tests/reliability

# Every scenario of issue 6, each bounded (counts and a timeout; SIGTERM stops its servers),
# about 7 minutes with these defaults. Options (counts) are in each script's --help.
BENCH_TIMEOUT := timeout -k 30
bench: $(STAMP)
	$(BENCH_TIMEOUT) 120 $(BIN)/python bench/accept.py --backend sqlite --seconds 10
	$(BENCH_TIMEOUT) 120 $(BIN)/python bench/accept.py --backend sqlite --seconds 10 --no-engine
	$(BENCH_TIMEOUT) 120 $(BIN)/python bench/accept.py --backend sqlite --seconds 10 --connections 256
	$(BENCH_TIMEOUT) 120 $(BIN)/python bench/accept.py --backend sqlite --seconds 10 --recipients 50
	$(BENCH_TIMEOUT) 300 $(BIN)/python bench/smpp.py --simulator-process
	$(BENCH_TIMEOUT) 330 $(BIN)/python bench/e2e.py --messages 100000 --engine separate --deadline-s 300
	$(BENCH_TIMEOUT) 400 $(BIN)/python bench/burst.py --messages 200000 --engine separate
	$(BENCH_TIMEOUT) 300 $(BIN)/python bench/storm.py --messages 100000
	$(BENCH_TIMEOUT) 300 $(BIN)/python bench/memory.py --messages 1000000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
