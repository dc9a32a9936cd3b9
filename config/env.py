"""The one place that reads per-deploy values from the environment."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
# Written by scripts/devstack.py while its embedded PostgreSQL / Redis are up,
# so that `.venv/bin/python manage.py ...` reaches them with nothing exported.
EMBEDDED_DATABASE_URL_FILE = BASE_DIR / ".run" / "database_url"
EMBEDDED_BROKER_URL_FILE = BASE_DIR / ".run" / "broker_url"

env = environ.Env()


def database_url() -> str:
    if "DATABASE_URL" in env:
        return env.str("DATABASE_URL")
    if EMBEDDED_DATABASE_URL_FILE.exists():
        return EMBEDDED_DATABASE_URL_FILE.read_text().strip()
    # Nothing configured: a local server on the default socket, so the error
    # names a database rather than a missing setting.
    return "postgresql://postgres@localhost/hospital"


def broker_url() -> str:
    if "CELERY_BROKER_URL" in env:
        return env.str("CELERY_BROKER_URL")
    if EMBEDDED_BROKER_URL_FILE.exists():
        return EMBEDDED_BROKER_URL_FILE.read_text().strip()
    return "redis://localhost:6379/0"


def cache_url(broker: str | None = None) -> str:
    """CACHE_URL, else the broker's Redis with db CACHE_REDIS_DB (1), as a redis-py URL."""
    if broker is None and "CACHE_URL" in env:
        return env.str("CACHE_URL")
    broker = broker or broker_url()
    db = env.int("CACHE_REDIS_DB", default=1)
    if broker.startswith("redis+socket://"):  # kombu's spelling of a unix socket
        return f"unix://{broker.removeprefix('redis+socket://').split('?')[0]}?db={db}"
    scheme, _, rest = broker.partition("://")
    hostpart = rest.split("?")[0].split("/")[0]
    return f"{scheme}://{hostpart}/{db}"
