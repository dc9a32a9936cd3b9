import functools

from dj_rest_auth.jwt_auth import JWTCookieAuthentication
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from django_tenants.utils import get_tenant_domain_model
from drf_spectacular.contrib.rest_auth import SimpleJWTCookieScheme
from rest_framework.authentication import CSRFCheck
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts.mfa.policy import ENROL_CLAIM
from accounts.models import LoginSession
from accounts.security.tokens import FAMILY_CLAIM
from core.tenancy import (
    request_tenant_confirm,
    request_tenant_confirmed,
    schema_qualified_cursor,
    token_belongs_here,
    user_belongs_here,
)


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


@functools.cache
def _user_query() -> tuple[str, list[str], list[str]]:
    """The statement of `user_with_hospital` and the attribute names of its columns, built once per process.

    Written out rather than built by the ORM on every request: the queryset (select_related and an Exists
    annotation) cost more Python time than the rest of the request's database work together.
    """
    user_model = get_user_model()
    hospital_model = user_model._meta.get_field("hospital").related_model
    domain_table = get_tenant_domain_model()._meta.db_table
    session_table = LoginSession._meta.db_table
    quote = connection.ops.quote_name
    user_fields = list(user_model._meta.concrete_fields)
    hospital_fields = list(hospital_model._meta.concrete_fields)
    columns = [f"u.{quote(str(f.column))}" for f in user_fields] + [
        f"h.{quote(str(f.column))}" for f in hospital_fields
    ]
    # Schema-qualified: these tables live in public whatever the search_path. The two checks are scalar
    # subqueries, not EXISTS: PostgreSQL plans an EXISTS in the select list twice (hashed and per row), and
    # planning is most of this statement's cost (measured: README "Sessions: the cost per request").
    sql = (
        f"SELECT {', '.join(columns)},"
        f" COALESCE((SELECT true FROM public.{quote(domain_table)} d"
        " WHERE d.tenant_id = u.hospital_id AND d.domain = %s LIMIT 1), false),"
        # The token's session is live: ended ones (logout, a session end, a password change) and those past
        # the hospital's idle or absolute limit refuse their access tokens at once. A primary-key probe.
        f" COALESCE((SELECT true FROM public.{quote(session_table)} s"
        " WHERE s.id = %s AND s.user_id = u.id AND s.ended_at IS NULL AND s.expires_at > now()), false)"
        f" FROM public.{quote(user_model._meta.db_table)} u"
        f" LEFT JOIN public.{quote(hospital_model._meta.db_table)} h ON h.id = u.hospital_id WHERE u.id = %s"
    )
    return sql, [f.attname for f in user_fields], [f.attname for f in hospital_fields]


def user_with_hospital(*, user_id, host: str, session: str | None = None):
    """The user with its hospital row cached on it, `host_routes_here`: whether `host` routes to that
    hospital now, and `session_live`: whether the session `session` is (one statement). None if there is
    no such user."""
    sql, user_names, hospital_names = _user_query()
    # Every table is `public.`: no SET search_path for it. Prepared: planning it was most of its cost.
    with schema_qualified_cursor(prepared=True) as cursor:
        cursor.execute(sql, [host, session, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    user_model = get_user_model()
    n = len(user_names)
    user = user_model.from_db(connection.alias, user_names, row[:n])
    hospital_values = row[n : n + len(hospital_names)]
    hospital = None
    if hospital_values[0] is not None:
        hospital_model = user_model._meta.get_field("hospital").related_model
        hospital = hospital_model.from_db(connection.alias, hospital_names, hospital_values)
    user_model._meta.get_field("hospital").set_cached_value(user, hospital)
    user.host_routes_here = row[-2]  # type: ignore[attr-defined]  # read by HospitalJWTAuthentication
    user.session_live = row[-1]  # type: ignore[attr-defined]
    return user


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
        if token.get(ENROL_CLAIM) and not getattr(request.parser_context.get("view"), "mfa_enrolment_allowed", False):
            # After the checks above: a token of another hospital is invalid there, not "must enrol".
            raise PermissionDenied(
                "This hospital requires a second factor for your account: enrol one at /accounts/mfa/totp/, "
                "then log in again.",
                code="mfa_enrollment_required",
            )
        return result

    def get_user(self, validated_token):
        """simplejwt's, with the hospital row and the host check in the same statement."""
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) from exc
        tenant = getattr(self.request, "tenant", None)
        user = user_with_hospital(
            user_id=user_id, host=getattr(tenant, "domain_url", ""), session=validated_token.get(FAMILY_CLAIM)
        )
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if not user.session_live:  # logged out, ended, timed out (or a token from before sessions)
            raise AuthenticationFailed("Token is invalid or expired", code="token_not_valid")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")
        return user

    def enforce_csrf(self, request) -> None:
        csrf_enforce(request)  # dj-rest-auth's check, answered like every other CSRF failure


class HospitalJWTScheme(SimpleJWTCookieScheme):
    """The schema's security scheme for HospitalJWTAuthentication (a drf-spectacular extension: registered by
    being defined, and this module is loaded with DRF's settings before any schema is generated).

    `Authorization: Bearer <access>` or the `hospital-access` cookie, valid only where it was issued.
    """

    target_class = "accounts.authentication.HospitalJWTAuthentication"
