"""The email outbox, in the public schema: every auth email is a row before it is a message."""

from django.db import models
from django.db.models import Q


class Email(models.Model):
    """One email to send, persisted in the transaction that caused it.

    A Celery task renders and sends it; the beat sweep queues again what is
    due and not yet sent, so a broker outage or a lost task loses nothing.
    Kept in public (one table for every hospital) so that one indexed query
    finds everything due, whatever the number of hospitals; `hospital` says
    whose schema it is rendered in and whose name and links it carries.
    """

    class Kind(models.TextChoices):
        VERIFY_EMAIL = "verify_email", "Email verification"
        PASSWORD_RESET = "password_reset", "Password reset"
        PASSWORD_CHANGED = "password_changed", "Password changed notice"
        SESSIONS_ENDED = "sessions_ended", "Sessions ended notice"
        INVITATION = "invitation", "Staff invitation"
        ACCOUNT_EXISTS = "account_exists", "Account already exists"
        BREAK_GLASS_OPENED = "break_glass_opened", "Emergency access opened"
        MFA_NOTICE = "mfa_notice", "Second factor changed or used"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"

    hospital = models.ForeignKey(
        "tenants.Hospital",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: a platform email.",
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    to = models.EmailField(max_length=254)
    # Plain strings only (links, names): decided where the email is queued,
    # because a worker has no request to build links from. Cleared once sent:
    # links carry secrets.
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message_id = models.CharField(max_length=255, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(help_text="When the sweep queues it again if still pending.")
    created = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="emails_email_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to} ({self.status})"
