"""The command lines of the stack's processes, in one place.

`make run` (scripts/devstack.py) and docker/compose.yaml run exactly these,
each after the Python interpreter (`python <args>`); tests/test_deploy.py
holds the compose file to them. Plain data: no Django import.
"""

# One-shot, before any web or Celery process starts: the public schema, then
# every hospital (and the spare schemas, tenants/management/commands/migrate_schemas.py),
# then the platform's own row and domain so that BASE_DOMAIN routes.
MIGRATE = (
    ("manage.py", "migrate_schemas", "--shared", "--noinput"),
    ("manage.py", "migrate_schemas", "--tenant", "--executor=multiprocessing", "--noinput"),
    ("manage.py", "ensure_platform"),
)

# Threads: the worker waits on SMTP and PostgreSQL, not on the CPU.
CELERY_WORKER = ("-m", "celery", "-A", "tasks", "worker", "--loglevel=INFO",
                 "--pool", "threads", "--concurrency", "4", "--hostname", "worker@%h")


def celery_beat(schedule: str) -> tuple[str, ...]:
    """Beat keeps its schedule state in a file; each environment says where."""
    return ("-m", "celery", "-A", "tasks", "beat", "--loglevel=INFO", "--schedule", schedule)


# Production web server; `make run` serves with runserver instead (autoreload, DEBUG).
WEB = ("-m", "gunicorn", "--config", "config/gunicorn.py", "config.wsgi")
