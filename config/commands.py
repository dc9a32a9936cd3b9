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

# Queues (CELERY_TASK_ROUTES in config/settings/base.py): auth email apart from
# maintenance, so a burst of spare-schema refills (each migrates a schema, seconds)
# never delays a verification or reset mail. "celery" is the default queue.
EMAIL_QUEUES = ("email", "celery")
MAINTENANCE_QUEUES = ("maintenance",)
ALL_QUEUES = EMAIL_QUEUES + MAINTENANCE_QUEUES


def celery_worker(queues: tuple[str, ...], concurrency: int, name: str) -> tuple[str, ...]:
    # Threads: the worker waits on SMTP and PostgreSQL, not on the CPU. No gossip, mingle or heartbeat:
    # nothing here uses worker-to-worker events, and kombu's Redis transport crashed the worker when it
    # restarted those broadcast consumers after a broker outage ("'NoneType' object has no attribute
    # 'hostname'", celery/kombu#582); tasks are consumed and retried without them.
    return (
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "--loglevel=INFO",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--queues",
        ",".join(queues),
        "--hostname",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    )


# `make run`: one worker for every queue.
CELERY_WORKER = celery_worker(ALL_QUEUES, 4, "worker")
# docker/compose.yaml: one worker per kind of work; refills serialize on a lock anyway.
CELERY_WORKER_EMAIL = celery_worker(EMAIL_QUEUES, 4, "worker")
CELERY_WORKER_MAINTENANCE = celery_worker(MAINTENANCE_QUEUES, 1, "maintenance")


def celery_beat(schedule: str) -> tuple[str, ...]:
    """Beat keeps its schedule state in a file; each environment says where."""
    return ("-m", "celery", "-A", "tasks", "beat", "--loglevel=INFO", "--schedule", schedule)


# The web server of production and of `make run` (scripts/devstack.py adds a loopback --bind);
# `make dev` serves with runserver instead, for its autoreload.
WEB = ("-m", "gunicorn", "--config", "config/gunicorn.py", "config.wsgi")
