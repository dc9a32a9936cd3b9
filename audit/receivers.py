"""Django's auth signals, into the audit trail of the schema the request was served from."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.services import audit_record


@receiver(user_logged_in)
def login_succeeded(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditEvent.Action.LOGIN_SUCCEEDED, actor=user, target=user)


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the email that was tried: credentials arrive with the password masked, and it is not kept.
    email = str(credentials.get("email") or credentials.get("username") or "")[:254]
    audit_record(action=AuditEvent.Action.LOGIN_FAILED, target_type="accounts.user", detail={"email": email})
