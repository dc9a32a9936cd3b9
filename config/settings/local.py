"""Local development: `make run` (gunicorn) and `make dev` (runserver). Plain HTTP on *.localhost."""

from config.env import env

env.ENVIRON.setdefault("DJANGO_SECRET_KEY", "local-dev-only-not-secret-0123456789abcdef0123456789")
env.ENVIRON.setdefault("JWT_AUTH_SECURE", "false")  # cookies over http://*.localhost
env.ENVIRON.setdefault("ACCOUNT_DEFAULT_HTTP_PROTOCOL", "http")
env.ENVIRON.setdefault("SSO_ALLOW_HTTP_ISSUERS", "true")  # the local test IdP (devtools/idp/) speaks http
env.ENVIRON.setdefault("DJANGO_DEBUG", "true")
env.ENVIRON.setdefault("LOG_FORMAT", "text")  # a terminal, not a log collector

from config.settings.base import *  # noqa: E402,F403

# gunicorn (`make run`) serves no static files: whitenoise finds the admin's CSS in the apps,
# as runserver would, with no collectstatic (whitenoise's default under DEBUG, said here).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
