"""Queue, render and send emails. Called by account and hospital services, and by the tasks."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from email.utils import make_msgid
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from core.tasks import publish_after_commit
from emails.models import Email

logger = logging.getLogger(__name__)
PLATFORM_NAME = "Hospital Platform"


class EmailDeferred(Exception):
    """Sending failed for now; try again in `retry_in` seconds."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"retry in {retry_in:.0f}s")
        self.retry_in = retry_in


def email_queue(*, kind: str, to: str, hospital, context: dict) -> Email:
    """Persists an email and queues its sending once the current transaction commits."""
    if hospital is not None and hospital.is_platform:
        hospital = None
    email = Email.objects.create(
        kind=kind,
        to=to,
        hospital=hospital,
        context=context,
        message_id=make_msgid(domain=settings.BASE_DOMAIN),
        next_attempt_at=timezone.now() + timedelta(seconds=settings.EMAIL_REQUEUE_AFTER_SECONDS),
    )
    publish_after_commit("emails.tasks.email_send_task", email.pk)
    return email


def email_render(email: Email) -> EmailMultiAlternatives:
    """Text and HTML bodies, rendered in the schema of the hospital the email belongs to."""
    schema = email.hospital.schema_name if email.hospital else get_public_schema_name()
    with schema_context(schema):
        context = {**email.context, "hospital_name": email.hospital.name if email.hospital else PLATFORM_NAME}
        subject = " ".join(render_to_string(f"emails/{email.kind}_subject.txt", context).split())
        text = render_to_string(f"emails/{email.kind}.txt", context)
        html = render_to_string(f"emails/{email.kind}.html", context)
    message = EmailMultiAlternatives(
        subject, text, settings.DEFAULT_FROM_EMAIL, [email.to], headers={"Message-ID": email.message_id}
    )
    message.attach_alternative(html, "text/html")
    return message


def retry_delay(attempts: int) -> float:
    return min(settings.EMAIL_RETRY_BASE_SECONDS * 2 ** (attempts - 1), settings.EMAIL_RETRY_MAX_SECONDS)


def email_send(*, email_id: int) -> bool:
    """Sends one queued email unless it already went out (or another worker is sending it).

    The row stays locked while the SMTP server takes the message, so two
    workers never send it twice; once it is marked sent, a retry does nothing.
    Returns whether it was sent now; raises EmailDeferred when SMTP failed.
    """
    accepted_at = None
    try:
        with transaction.atomic():
            email = (
                Email.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("hospital")
                .filter(pk=email_id, status=Email.Status.PENDING)
                .first()
            )
            if email is None:
                return False
            now = timezone.now()
            try:
                email_render(email).send()
            except (SMTPException, OSError) as exc:
                email.attempts += 1
                email.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                delay = retry_delay(email.attempts)
                # The task retries after `delay`; the sweep steps in only if that retry is lost.
                email.next_attempt_at = now + timedelta(seconds=delay + settings.EMAIL_REQUEUE_AFTER_SECONDS)
                email.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                # No address and no SMTP text (it quotes addresses) in logs: the full error is in last_error.
                logger.warning("Email %s failed (attempt %s): %s", email.pk, email.attempts, type(exc).__name__)
            else:
                accepted_at = now
                email.status, email.sent_at, email.context = Email.Status.SENT, now, {}
                email.attempts += 1
                email.save(update_fields=["status", "sent_at", "context", "attempts"])
                return True
    except DatabaseError:
        if accepted_at is None:
            raise
        email_sent_record_on_new_connection(email_id=email_id, sent_at=accepted_at)
        return True
    raise EmailDeferred(delay)


def email_sent_record_on_new_connection(*, email_id: int, sent_at) -> None:
    """The SMTP server took the message, but the database connection went before "sent" was committed (a
    PgBouncer or PostgreSQL restart). The sweep would then send it again, so record it on a fresh connection,
    retrying until the database is back or EMAIL_SENT_RECORD_PATIENCE_SECONDS have passed (then the email may
    go out twice: delivery stays at-least-once, never lost).
    """
    deadline = time.monotonic() + settings.EMAIL_SENT_RECORD_PATIENCE_SECONDS
    pause = 0.1
    while True:
        connection.close()
        try:
            Email.objects.filter(pk=email_id, status=Email.Status.PENDING).update(
                status=Email.Status.SENT, sent_at=sent_at, context={}, attempts=F("attempts") + 1
            )
        except DatabaseError:
            if time.monotonic() >= deadline:
                logger.error("Email %s was sent but could not be recorded as sent; it may be sent again", email_id)
                raise
            time.sleep(pause)  # back-off while the database comes back
            pause = min(pause * 2, 2.0)
        else:
            logger.warning("Email %s recorded as sent on a new database connection", email_id)
            return


def outbox_due_ids(*, limit: int = 500) -> list[int]:
    """Pending emails whose time has come, pushed back so the next sweep does not queue them twice."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Email.objects.select_for_update(skip_locked=True)
            .filter(status=Email.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        Email.objects.filter(pk__in=ids).update(
            next_attempt_at=now + timedelta(seconds=settings.EMAIL_REQUEUE_AFTER_SECONDS)
        )
    return ids
