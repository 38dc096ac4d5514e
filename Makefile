# pytrs — the two commands that matter: `make run` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
CONFIG  ?= config/pytrs.example.toml
BIN      = $(VENV)/bin
STAMP    = $(VENV)/.installed

.PHONY: install run test test-sqlite test-postgresql test-mariadb test-chaos lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Upgrade the SQLite database under ./var and start the daemon (SMTP on 127.0.0.1:2525, the
## web view on http://127.0.0.1:8080).
run: $(STAMP)
	mkdir -p var
	$(BIN)/pytrs --config $(CONFIG) db upgrade
	exec $(BIN)/pytrs --config $(CONFIG) run

## The whole suite, on SQLite, or on PostgreSQL when PYTRS_TEST_DATABASE_URL is set. Tests run
## in one worker process per CPU (at most 4, pytest-xdist): most of their time is spent
## waiting for daemons and commands they start. TEST_JOBS=0 runs them in this process.
TEST_JOBS ?= auto
PYTEST = $(BIN)/python -m pytest -q -n $(TEST_JOBS) --maxprocesses=4

test: $(STAMP)
	$(PYTEST)

test-sqlite: $(STAMP)
	env -u PYTRS_TEST_DATABASE_URL $(PYTEST)

test-postgresql: $(STAMP)
	PYTRS_TEST_DATABASE_URL=$${PYTRS_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1/test} \
		$(PYTEST)

## On MariaDB 10.6+: each test in a database of its own, made and dropped with the
## URL's login (which needs CREATE and DROP on the server).
test-mariadb: $(STAMP)
	PYTRS_TEST_DATABASE_URL=$${PYTRS_TEST_DATABASE_URL:-mysql+asyncmy://root@127.0.0.1/test} \
		$(PYTEST)

## Three daemons on one PostgreSQL database, one killed every few seconds, under mail
## (tests/chaos/; left out of `make test`, which deselects the `chaos` marker).
test-chaos: $(STAMP)
	PYTRS_TEST_DATABASE_URL=$${PYTRS_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1/test} \
		$(BIN)/python -m pytest -q -s -m chaos tests/chaos

lint: $(STAMP)
	$(BIN)/ruff check pytrs tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py --n 5000

clean:
	rm -rf $(VENV) var bench/out .pytest_cache .mypy_cache .ruff_cache
