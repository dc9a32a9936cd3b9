from celery import shared_task

from emails import services


@shared_task(bind=True, max_retries=None, acks_late=True)
def email_send_task(self, email_id: int) -> None:
    try:
        services.email_send(email_id=email_id)
    except services.EmailDeferred as deferred:
        raise self.retry(countdown=deferred.retry_in) from deferred


@shared_task
def outbox_sweep() -> int:
    """Beat: queues again every pending email that is due (broker was down, task lost, retry due)."""
    ids = services.outbox_due_ids()
    for email_id in ids:
        email_send_task.apply_async(args=[email_id])
    return len(ids)
