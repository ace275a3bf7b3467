# TrialHub developer commands. Everything runs from the project's own virtualenv (.venv) on a
# real PostgreSQL and Redis: the servers named by DATABASE_URL / REDIS_URL (or CELERY_BROKER_URL)
# when they are set, otherwise the embedded ones that `python -m trialhub.embedded` starts with
# their data under .data/ and stops again afterwards.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EMBEDDED := exec $(PY) -m trialhub.embedded --
PYTEST_ARGS ?=
BENCHES := $(sort $(wildcard bench/*.py))

# Recipes and everything they start (honcho's Procfile.dev, bench scripts) find the venv's
# python, celery and honcho first; output reaches the terminal line by line.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PYTHONUNBUFFERED := 1

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench migrate seed

help:
	@echo "make venv     create .venv and install the project with its dev extras"
	@echo "make run      migrate, load the demo data, serve http://127.0.0.1:8000 + Celery worker + beat"
	@echo "make test     run the test suite (PYTEST_ARGS='-k name' to select)"
	@echo "make lint     ruff check and ruff format --check"
	@echo "make bench    run every bench/*.py"
	@echo "make migrate  apply database migrations"
	@echo "make seed     apply migrations and load the demo data"

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# Ctrl-C reaches honcho, which stops web, worker and beat; then the embedded servers stop.
# honcho reads no .env file: settings read only the process environment (.env is for compose).
run: venv
	$(EMBEDDED) sh -c 'python manage.py migrate --noinput \
		&& python manage.py seed_demo \
		&& exec honcho --env /dev/null --procfile Procfile.dev start'

test: venv
	$(EMBEDDED) python -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# bench/_*.py are helpers the scripts import, not benchmarks. A script that misses its target
# still exits 0 (its table says MISS); a non-zero status means it could not measure.
bench: venv
ifeq ($(filter-out bench/_%,$(BENCHES)),)
	@echo "No benchmarks yet: bench/ has no *.py files."
else
	$(EMBEDDED) sh -c 'for script in $(filter-out bench/_%,$(BENCHES)); do \
		echo "== $$script"; python "$$script" || exit 1; done'
endif

migrate: venv
	$(EMBEDDED) python manage.py migrate --noinput

seed: venv
	$(EMBEDDED) sh -c 'python manage.py migrate --noinput && python manage.py seed_demo'
