# Terminbuch — two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8080
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
export FLASK_APP := run.py
export PORT

.PHONY: run test setup db lint test-sqlite test-postgres worker cron bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

# Schema by migrations, then roles/permissions/built-in data by `flask init`.
db: setup
	$(BIN)/flask db upgrade
	$(BIN)/flask init

run: db
	$(BIN)/flask demo seed --if-empty
	@$(BIN)/flask demo logins
	@echo "Terminbuch läuft auf http://127.0.0.1:$(PORT)/  (Strg+C beendet)"
	$(BIN)/python run.py

# The RQ worker and the one cron process (`make run` starts both itself when Redis answers).
# REDIS_URL defaults to the local Redis, as in `make run`.
worker: db
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(BIN)/flask worker

cron: db
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(BIN)/flask cron

lint: setup
	$(BIN)/ruff check app tests bench config.py run.py

test-sqlite: setup
	$(BIN)/python -m pytest -n 2 -q

# Runs when PostgreSQL answers; with REQUIRE_SERVICES=1 a missing server fails.
test-postgres: setup
	@if $(BIN)/python -c "import psycopg2,sys; psycopg2.connect('$(PG_TEST_URL)', connect_timeout=3)" 2>/dev/null; then \
		TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -n 2 -q; \
	elif [ "$$REQUIRE_SERVICES" = "1" ]; then \
		echo "PostgreSQL at $(PG_TEST_URL) does not answer and REQUIRE_SERVICES=1"; exit 1; \
	else \
		echo "PostgreSQL does not answer: suite ran on SQLite only"; \
	fi

test: lint test-sqlite test-postgres

bench: setup
	bash bench/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
