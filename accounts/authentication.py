from dj_rest_auth.jwt_auth import JWTCookieAuthentication
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_tenant_domain_model
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from core.tenancy import request_tenant_confirm, request_tenant_confirmed, token_belongs_here, user_belongs_here


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

    The user is read in one statement with its hospital row (the profile shows it; nothing loads it
    again) and, for a request routed from the tenants cache, whether the request's host still routes to
    that hospital: only an active hospital still served at this host confirms the cached routing
    (tenants/routing.py). Anything else fails here, and the tenant middleware answers from a fresh lookup.
    """

    def authenticate(self, request):
        self.request = request  # for get_user, which simplejwt calls with the token only
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if not (token_belongs_here(token, request) and user_belongs_here(user, request)):
            raise AuthenticationFailed("Token is invalid or expired", code="token_not_valid")
        if request_tenant_confirmed(request) is None and hasattr(request, "tenant"):
            hospital = user.hospital
            if not (user.host_routes_here and hospital.is_active):
                raise AuthenticationFailed("Token is invalid or expired", code="token_not_valid")
            request_tenant_confirm(request, hospital)
        return result

    def get_user(self, validated_token):
        """simplejwt's, with the hospital row (and the host check) in the same statement."""
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) from exc
        users = get_user_model().objects.select_related("hospital")
        request = self.request
        if request_tenant_confirmed(request) is None and hasattr(request, "tenant"):
            served = get_tenant_domain_model().objects.filter(
                tenant_id=OuterRef("hospital_id"), domain=request.tenant.domain_url
            )
            users = users.annotate(host_routes_here=Exists(served))
        try:
            user = users.get(**{api_settings.USER_ID_FIELD: user_id})
        except get_user_model().DoesNotExist as exc:
            raise AuthenticationFailed(_("User not found"), code="user_not_found") from exc
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")
        return user

    def enforce_csrf(self, request) -> None:
        csrf_enforce(request)  # dj-rest-auth's check, answered like every other CSRF failure
