import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def publish_after_commit(task, *args) -> None:
    """Queues `task(*args)` once the current transaction commits.

    A broker outage is logged, never raised: the caller's request has already
    succeeded, and whatever the task stands for is persisted and swept again
    later (see emails.tasks.outbox_sweep).
    """

    def publish() -> None:
        try:
            task.apply_async(args=args)
        except Exception:  # kombu/redis raise a variety of connection errors
            logger.warning("Broker unavailable; %s%r left for the next sweep", task.name, args, exc_info=True)

    transaction.on_commit(publish)
