from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.addresses import canonical_email_or_none
from accounts.policy import PasswordNotAllowed, password_allowed
from accounts.security.attempts import LoginRefused, attempt_reserve
from accounts.security.services import login_failed
from core.tenancy import request_hospital_id

User = get_user_model()


class HospitalEmailBackend(ModelBackend):
    """Email + password, for the accounts of the hospital the request was routed to (its realm).

    The one place a password is checked, for the API and Django's admin alike:
    an attempt is taken from the login budget first (accounts/security/attempts.py), and
    past the limit the password is never evaluated. A user of hospital A logging
    in on hospital B is treated exactly like an unknown email there. Every failure or refusal goes
    through `services.login_failed` (the trail), not through Django's `user_login_failed` signal, which
    a refusal never reaches.
    """

    def authenticate(self, request, email=None, password=None, username=None, **kwargs):
        typed = email or username  # Django's admin login form calls it "username"
        if request is None or not isinstance(typed, str) or not typed.strip() or password is None:
            return None
        try:
            reservation = attempt_reserve(request, typed)
        except LoginRefused as refused:  # past the budget: the password is never looked at
            login_failed(email=typed, refused=refused)
            raise
        canonical = canonical_email_or_none(typed)
        user = (
            None
            if canonical is None
            # With its hospital row: the login's answer shows it (the profile serializer), nothing reloads it.
            else User.objects.select_related("hospital")
            .filter(email=canonical, hospital_id=request_hospital_id(request))
            .first()
        )
        if user is None:
            # Spend the time of a real check, so response times do not tell
            # which emails have accounts here.
            User().set_password(password)
        elif user.check_password(password) and self.user_can_authenticate(user):
            reservation.refund()
            # Asked only once the password is right: a guesser never learns who may still use one.
            if not password_allowed(hospital_id=user.hospital_id, email=user.email):
                raise PasswordNotAllowed()
            return user
        login_failed(email=typed, reservation=reservation)
        return None
