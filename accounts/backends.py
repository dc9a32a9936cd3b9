from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.tenancy import request_hospital_id

User = get_user_model()


class HospitalEmailBackend(ModelBackend):
    """Email + password, for the users of the hospital the request was routed to.

    A user of hospital A logging in on hospital B is treated exactly like an
    unknown email, so the answer is the wrong-password answer.
    """

    def authenticate(self, request, email=None, password=None, username=None, **kwargs):
        email = email or username  # Django's admin login form calls it "username"
        if request is None or not email or password is None:
            return None
        hospital_id = request_hospital_id(request)
        try:
            user = User.objects.get(email__iexact=email, hospital_id=hospital_id)
        except User.DoesNotExist:
            # Spend the time of a real check, so response times do not tell
            # which emails have accounts here.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
