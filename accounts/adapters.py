"""django-allauth, changed only through its adapter: tenant-aware signup and emails."""
from types import SimpleNamespace

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from django.contrib.auth import get_user_model
from django.db import connection

from tenants.links import hospital_link


def _request_hospital(request):
    tenant = getattr(request, "tenant", None) or getattr(connection, "tenant", None)
    return None if tenant is None or tenant.is_platform else tenant


class HospitalAccountAdapter(DefaultAccountAdapter):
    def add_message(self, *args, **kwargs) -> None:
        # A JSON API has no page to flash messages on.
        return None

    def send_mail(self, template_prefix: str, email: str, context_data: dict) -> None:
        hospital = _request_hospital(context.request)
        if hospital is not None:
            # allauth's templates greet with current_site.name: make it the hospital's.
            site = SimpleNamespace(name=hospital.name, domain=hospital_link(hospital, "/"))
            context_data = {"current_site": site, **context_data}
        super().send_mail(template_prefix, email, context_data)

    def format_email_subject(self, subject: str) -> str:
        hospital = _request_hospital(context.request)
        return f"[{hospital.name}] {subject}" if hospital else subject

    def get_email_confirmation_url(self, request, emailconfirmation) -> str:
        hospital = emailconfirmation.email_address.user.hospital
        return hospital_link(hospital, f"/accounts/registration/account-confirm-email/{emailconfirmation.key}/")

    def send_account_already_exists_mail(self, email: str) -> None:
        # Point the owner at password reset on their own hospital, which may
        # not be the one where somebody just tried to register.
        owner = get_user_model().objects.filter(email__iexact=email).select_related("hospital").first()
        reset_url = hospital_link(owner.hospital, "/accounts/password/reset/") if owner and owner.hospital else ""
        self.send_mail("account/email/account_already_exists", email, {"password_reset_url": reset_url})
