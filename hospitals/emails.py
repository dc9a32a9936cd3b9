"""The mails `hospitals` sends, through the outbox (emails.services.email_queue: sent by the worker)."""

from django.utils import formats

from core.links import hospital_link
from core.tenancy import current_tenant
from emails.models import Email
from emails.services import email_queue
from hospitals.models import BreakGlassGrant
from staff.models import StaffMember


def break_glass_notify(*, grant: BreakGlassGrant) -> list[Email]:
    """Tells the hospital's admins and privacy officers that someone broke the glass. The mail names who and
    when, not the patient nor the reason (a mailbox is not the record): the review queue has both."""
    hospital = current_tenant()
    readers = StaffMember.objects.filter(
        is_active=True, role__in=[StaffMember.Role.HOSPITAL_ADMIN, StaffMember.Role.PRIVACY_OFFICER]
    ).select_related("user")
    context = {
        "who": grant.staff.user.name or grant.staff.user.email,
        "role": grant.staff.get_role_display().lower(),
        "opened": formats.date_format(grant.opened_at, "DATETIME_FORMAT"),
        "expires": formats.date_format(grant.expires_at, "DATETIME_FORMAT"),
        "grant": grant.pk,
        "link": hospital_link(hospital, f"/break-glass/{grant.pk}/"),
    }
    return [
        email_queue(kind=Email.Kind.BREAK_GLASS_OPENED, to=reader.user.email, hospital=hospital, context=context)
        for reader in readers
        if reader.user.is_active
    ]
