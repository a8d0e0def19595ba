# The two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test bench venv lint migrate

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# Migrate, load demo data, create the demo admin (printed once), then serve the
# admin and API on 127.0.0.1:$(PORT) with a scheduler (and RQ workers when
# REDIS_URL is set). Safe to run again.
run: venv
	PORT=$(PORT) bash scripts/run-all.sh

# The whole suite. Against PostgreSQL and Redis when DATABASE_URL / REDIS_URL
# are set (as .ci/run does); otherwise on SQLite with Redis tests skipped.
test: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q -rfEs $(PYTEST_ARGS)

bench: venv
	bash bench/run-all.sh

lint: venv
	$(VENV)/bin/ruff check .
