"""The one place that reads per-deploy values from the environment."""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
# Written by scripts/devstack.py while the embedded PostgreSQL is up, so that
# `.venv/bin/python manage.py ...` reaches it with nothing exported by hand.
EMBEDDED_DATABASE_URL_FILE = BASE_DIR / ".run" / "database_url"

env = environ.Env()


def database_url() -> str:
    if "DATABASE_URL" in env:
        return env.str("DATABASE_URL")
    if EMBEDDED_DATABASE_URL_FILE.exists():
        return EMBEDDED_DATABASE_URL_FILE.read_text().strip()
    # Nothing configured: a local server on the default socket, so the error
    # names a database rather than a missing setting.
    return "postgresql://postgres@localhost/hospital"
