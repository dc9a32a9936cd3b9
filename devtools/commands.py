"""The command lines of the stack's processes (config/commands.py) with this interpreter, and their environment.

`make run` starts these, tests/test_make_run.py starts exactly these, and the test suite's worker is
`suite_worker_command`: the same worker with the test's own flags.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from config import commands  # plain data, the command lines docker/compose.yaml runs too

# `make run`'s gunicorn processes: a laptop's share, not config/gunicorn.py's 2 * cores + 1.
LOCAL_WEB_CONCURRENCY = "2"


def django_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for Django children: local settings unless chosen otherwise (as manage.py)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    return env


def web_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = django_env(environ)
    env.setdefault("WEB_CONCURRENCY", LOCAL_WEB_CONCURRENCY)
    return env


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def migrate_steps() -> list[tuple[str, list[str]]]:
    """(name, argv) of each one-shot step before the web and Celery processes start."""
    return [(" ".join(step[1:3]), python(*step)) for step in commands.MIGRATE]


def web_command(port: int | str, host: str = "127.0.0.1") -> list[str]:
    """`make run`'s web server: gunicorn with config/gunicorn.py, as compose runs it, on loopback unless told
    (a host of devtools.multihost binds its own address)."""
    return python(*commands.WEB, "--bind", f"{host}:{port}")


def runserver_command(address: str, *, reload: bool = True) -> list[str]:
    """`manage.py runserver`: `make dev`'s server (with autoreload), the benches' and some tests' (without)."""
    return python("manage.py", "runserver", address, *(() if reload else ("--noreload",)))


def celery_commands(schedule: Path) -> dict[str, list[str]]:
    """`make run`'s Celery processes: one worker for every queue, and beat."""
    return {
        "celery worker": python(*commands.CELERY_WORKER),
        "celery beat": python(*commands.celery_beat(str(schedule))),
    }


def suite_worker_command(schedule: Path) -> list[str]:
    """The test suite's worker: `make run`'s, named apart, with beat in the same process (its schedule file)."""
    worker = list(commands.CELERY_WORKER)
    worker[worker.index("--hostname") + 1] = "test-worker@%h"
    return python(*worker, "--beat", "--schedule", str(schedule))


def worker_concurrency() -> int:
    """The thread pool size of `make run`'s worker."""
    return int(commands.CELERY_WORKER[commands.CELERY_WORKER.index("--concurrency") + 1])
