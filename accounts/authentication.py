from dj_rest_auth.jwt_auth import JWTCookieAuthentication
from django.http import HttpResponse
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from core.tenancy import token_belongs_here, user_belongs_here


def csrf_enforce(request) -> None:
    """Django's CSRF check (the csrftoken cookie and the X-CSRFToken header); a failure is a 403 csrf_failed.

    For requests a browser authenticates by cookie: it sends them on its own, also for a page on a sibling
    hospital subdomain (same site, so SameSite=Lax does not stop it), which cannot read our csrftoken.
    """
    check = CSRFCheck(lambda request: HttpResponse())  # as DRF's SessionAuthentication does: no view runs
    check.process_request(request)  # reads the csrftoken cookie
    reason = check.process_view(request, lambda request: HttpResponse(), (), {})
    if reason:
        raise PermissionDenied(f"CSRF check failed: {reason}", code="csrf_failed")


class HospitalJWTAuthentication(JWTCookieAuthentication):
    """JWT from `Authorization: Bearer` or the access cookie, good only where it was issued.

    simplejwt signs every hospital's tokens with one key, so without this check
    a token minted on hospital A would authenticate on hospital B.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if not (token_belongs_here(token, request) and user_belongs_here(user, request)):
            raise AuthenticationFailed("Token is invalid or expired", code="token_not_valid")
        return result

    def enforce_csrf(self, request) -> None:
        csrf_enforce(request)  # dj-rest-auth's check, answered like every other CSRF failure
