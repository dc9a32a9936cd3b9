"""The account emails, queued with plain-string contexts (names and links on the hospital's frontend)."""

from allauth.account.utils import user_pk_to_url_str
from django.urls import reverse

from core.links import hospital_link
from core.tenancy import current_tenant
from emails.models import Email
from emails.services import email_queue


def _current_hospital():
    tenant = current_tenant()
    return None if tenant is None or tenant.is_platform else tenant


def verification_queue(*, address, key: str) -> Email:
    user = address.user
    link = hospital_link(user.hospital, reverse("account_confirm_email", args=[key]))
    return email_queue(
        kind=Email.Kind.VERIFY_EMAIL,
        to=address.email,
        hospital=user.hospital,
        context={"name": user.name, "link": link, "key": key},
    )


def password_reset_queue(*, user, key: str) -> Email:
    link = hospital_link(user.hospital, reverse("password_reset_confirm", args=[user_pk_to_url_str(user), key]))
    return email_queue(
        kind=Email.Kind.PASSWORD_RESET, to=user.email, hospital=user.hospital, context={"name": user.name, "link": link}
    )


def password_changed_queue(*, user) -> Email:
    reset_link = hospital_link(user.hospital, "/accounts/password/reset/") if user.hospital else ""
    return email_queue(
        kind=Email.Kind.PASSWORD_CHANGED,
        to=user.email,
        hospital=user.hospital,
        context={"name": user.name, "reset_link": reset_link},
    )


def account_exists_queue(*, email: str) -> Email:
    """To the owner of an address somebody tried to register again at its hospital: where to reset instead."""
    hospital = _current_hospital()
    reset_link = hospital_link(hospital, "/accounts/password/reset/") if hospital else ""
    return email_queue(kind=Email.Kind.ACCOUNT_EXISTS, to=email, hospital=hospital, context={"reset_link": reset_link})


MFA_EVENTS = {
    "enrolled": "A second factor (authenticator app) was added to",
    "removed": "A second factor was removed from",
    "recovery_code_used": "A recovery code was used to sign in to",
    "reset": "An administrator removed every second factor from",
}


def mfa_notice_queue(*, user, event: str) -> Email:
    """Tells the owner of an account that its second factors changed or a recovery code was used."""
    return email_queue(
        kind=Email.Kind.MFA_NOTICE,
        to=user.email,
        hospital=user.hospital,
        context={"name": user.name, "event": event, "what": MFA_EVENTS[event]},
    )


def sessions_ended_queue(*, user, count: int) -> Email:
    """To the owner of sessions a hospital admin ended: why they were signed out."""
    return email_queue(
        kind=Email.Kind.SESSIONS_ENDED,
        to=user.email,
        hospital=user.hospital,
        context={"name": user.name, "count": str(count)},
    )
