"""Publishing Celery tasks by name, after the current transaction commits.

By name, so that a service never imports the tasks module that calls it (no
`services` <-> `tasks` cycle) and this leaf needs no Celery app: the message
goes through the app Celery has current (`tasks.celery.app` in every process
that loads Django's settings for the stack), with the routes of its settings.
"""

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def publish_after_commit(task_name: str, *args) -> None:
    """Queues the task `task_name` with `args` once the current transaction commits.

    A broker outage is logged, never raised: the caller's request has already
    succeeded, and whatever the task stands for is persisted and swept again
    later (see emails.tasks.outbox_sweep).
    """

    def publish() -> None:
        try:
            current_app.send_task(task_name, args=args)
        except Exception:  # kombu/redis raise a variety of connection errors
            logger.warning("Broker unavailable; %s%r left for the next sweep", task_name, args, exc_info=True)

    transaction.on_commit(publish)
