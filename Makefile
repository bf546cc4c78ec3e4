# The two commands a new user needs: `make run` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The offline Stripe sandbox (stripe_sandbox/) that `make run` starts beside the web server.
SANDBOX_PORT ?= 12111
SANDBOX_URL := http://127.0.0.1:$(SANDBOX_PORT)

.PHONY: run test bench chaos lint typecheck chromium clean demo

# `make test` splits the suite over the cores (pytest-xdist); PYTEST_XDIST= runs it in one process.
PYTEST_XDIST ?= -n auto --maxprocesses=4

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run

# Debian's Chromium drives the browser tests (Playwright's own download cannot work offline).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: $(VENV)/.installed-run
	@mkdir -p data
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	@DEBUG=1 LOG_LEVEL=WARNING SITE_URL=http://localhost:$(PORT) $(BIN)/python manage.py seed_demo > $(VENV)/demo-logins.txt
	@echo ""
	@echo "  The platform is starting at http://localhost:$(PORT)/"
	@echo "  Demo logins:"
	@sed 's/^/    /' $(VENV)/demo-logins.txt
	@echo "  Emails are written to data/emails/."
	@echo "  Stripe is the offline sandbox at $(SANDBOX_URL)/ (test mode, state in data/stripe-sandbox/)."
	@echo "  Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined;"
	@echo "              4000 0000 0000 0341 pays, then fails every renewal. Any future expiry, any CVC."
	@echo "  Press Ctrl+C to stop."
	@echo ""
	@# The sandbox runs in the background and is stopped with the web server (Ctrl+C or exit).
	@$(BIN)/python -m stripe_sandbox --host 127.0.0.1 --port $(SANDBOX_PORT) --state-dir data/stripe-sandbox \
	    --webhook-url http://127.0.0.1:$(PORT)/stripe/webhook/ --quiet & sandbox=$$!; \
	  trap 'kill $$sandbox 2>/dev/null; wait $$sandbox 2>/dev/null' EXIT INT TERM; \
	  DEBUG=1 SITE_URL=http://localhost:$(PORT) STRIPE_API_BASE=$(SANDBOX_URL) \
	    $(BIN)/gunicorn config.wsgi --bind $(HOST):$(PORT) --workers 2 --threads 4 --graceful-timeout 5 --access-logfile -

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy .

test: $(VENV)/.installed-dev chromium lint typecheck
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

# N purchases under faults (worker SIGKILLs, a Redis restart, webhooks duplicated, reordered,
# delayed and dropped), then proof that nothing was lost. Needs PostgreSQL on 127.0.0.1:5432
# and redis-server; it starts its own Redis, database and processes, and removes them.
N ?= 1000
chaos: $(VENV)/.installed-dev
	$(BIN)/python -m bench.chaos --n $(N) $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .import_linter_cache
