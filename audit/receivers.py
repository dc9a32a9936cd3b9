"""Django's login signal, into the audit trail of the schema the request was served from."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from audit.models import AuditEvent
from audit.services import audit_record


@receiver(user_logged_in)
def login_succeeded(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditEvent.Action.LOGIN_SUCCEEDED, actor=user, target=user)


# Failed logins are recorded by accounts.security.services.login_failed, which every password check calls
# (Django's user_login_failed signal misses the refusals of the login budget).
