from django.utils import formats

from core.links import hospital_link
from emails.models import Email
from emails.services import email_queue


def invitation_queue(*, invitation, token: str, hospital) -> Email:
    inviter = invitation.invited_by.name or invitation.invited_by.email if invitation.invited_by else ""
    return email_queue(
        kind=Email.Kind.INVITATION,
        to=invitation.email,
        hospital=hospital,
        context={
            "link": hospital_link(hospital, f"/accounts/invitations/accept/{token}/"),
            "role": invitation.get_role_display().lower(),
            "inviter": inviter,
            "expires": formats.date_format(invitation.expires_at, "DATE_FORMAT"),
        },
    )
