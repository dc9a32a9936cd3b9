"""django-allauth, changed only through its adapter: every mail it would send goes to the outbox."""

from allauth.account.adapter import DefaultAccountAdapter

from accounts import emails


class HospitalAccountAdapter(DefaultAccountAdapter):
    def add_message(self, *args, **kwargs) -> None:
        # A JSON API has no page to flash messages on.
        return None

    def send_confirmation_mail(self, request, emailconfirmation, signup: bool) -> None:
        emails.verification_queue(address=emailconfirmation.email_address, key=emailconfirmation.key)

    def send_account_already_exists_mail(self, email: str) -> None:
        emails.account_exists_queue(email=email)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Every mail must be queued with its hospital's links (see accounts.emails);
        # a new allauth mail path must be wired there, not sent inline.
        raise NotImplementedError(f"allauth mail {template_prefix!r} is not routed through the outbox")
