"""Tests: real PostgreSQL, real HTTP, real SMTP sink; only speed is traded."""
from config.env import env

env.ENVIRON.setdefault("DJANGO_SECRET_KEY", "test-only-not-secret-0123456789abcdef0123456789abcd")
env.ENVIRON.setdefault("JWT_AUTH_SECURE", "false")
env.ENVIRON.setdefault("ACCOUNT_DEFAULT_HTTP_PROTOCOL", "http")
env.ENVIRON.setdefault("BASE_DOMAIN", "localhost")

from config.settings.base import *  # noqa: E402,F403
