"""Celery's log lines like Django's: one JSON line per task run, the sender's schema and request id with it.

Connected when tasks.celery imports this module: in workers, before Django's
apps (and django-guid's receivers) load, so at task_postrun ours runs before
django-guid clears the request id. The formatters are settings.LOGGING's (config/logs.py).
"""

from __future__ import annotations

import logging
import logging.config
import time

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

task_logger = logging.getLogger("hospital.task")


@setup_logging.connect
def _celery_logs_like_django(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING instead of Celery's own handlers."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@before_task_publish.connect
def _send_schema(headers: dict, **kwargs) -> None:
    """The sender's schema travels with the task, for its log line (tasks enter hospitals themselves)."""
    from core.tenancy import current_schema_name

    headers["schema"] = current_schema_name()


@task_prerun.connect
def _task_started(task, **kwargs) -> None:
    task.request.log_started = time.perf_counter()


@task_postrun.connect
def _task_finished(task_id, task, state, retval=None, **kwargs) -> None:
    started = getattr(task.request, "log_started", None)
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    fields = {
        "task": task.name,
        "task_id": task_id,
        "state": state,
        "duration_ms": duration_ms,
        "schema": task.request.get("schema"),
        "retries": task.request.retries,
    }
    if state == "FAILURE":
        fields["error"] = type(retval).__name__  # not its message: it may quote data
    level = logging.ERROR if state == "FAILURE" else logging.INFO
    task_logger.log(level, "%s %s %s %.1fms", task.name, task_id, state, duration_ms or 0, extra=fields)
