"""Tests: real PostgreSQL, real HTTP, real SMTP sink; only speed is traded."""

import os

from config.env import env

env.ENVIRON.setdefault("DJANGO_SECRET_KEY", "test-only-not-secret-0123456789abcdef0123456789abcd")
env.ENVIRON.setdefault("JWT_AUTH_SECURE", "false")
env.ENVIRON.setdefault("ACCOUNT_DEFAULT_HTTP_PROTOCOL", "http")
env.ENVIRON.setdefault("SSO_ALLOW_HTTP_ISSUERS", "true")  # the local test IdP (devtools/idp/) speaks http
env.ENVIRON.setdefault("BASE_DOMAIN", "localhost")
# Registration-heavy tests must not meet the rate limits; tests/test_abuse.py sets its own.
for _scope in ("REGISTRATION", "PASSWORD_RESET", "INVITATION_ACCEPT", "EMAIL", "LOGIN_FAILURES", "SSO_START"):
    env.ENVIRON.setdefault(f"THROTTLE_{_scope}_RATE", "10000/minute")

from config.settings.base import *  # noqa: E402,F403

# The tests' Celery worker retries and sweeps on a scale of seconds, not minutes.
EMAIL_RETRY_BASE_SECONDS = 0.5
EMAIL_RETRY_MAX_SECONDS = 2.0
EMAIL_REQUEUE_AFTER_SECONDS = 3.0
CELERY_BEAT_SCHEDULE["emails-outbox-sweep"]["schedule"] = 1.0  # noqa: F405

# One test database per run, so concurrent runs on one server never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405

# No collectstatic in tests: whitenoise finds the apps' static files where they are, as in development.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Every response says how many SQL statements its request sent (config/sqlcount.py), first in line so
# that it sees the whole request: the HTTP tier holds the hot paths to their statement budgets with it.
DB_STATEMENT_COUNTER = True
MIDDLEWARE = ["config.sqlcount.StatementCountMiddleware", *MIDDLEWARE]  # noqa: F405
