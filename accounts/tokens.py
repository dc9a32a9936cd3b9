"""JWTs that name their hospital, and the check that they are used nowhere else."""

import logging
import uuid

import jwt
from dj_rest_auth.app_settings import api_settings as rest_auth_settings
from dj_rest_auth.jwt_auth import CookieTokenRefreshSerializer
from django.db import connection
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenVerifySerializer
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from accounts.models import RefreshTokenFamily
from audit.models import AuditEvent
from audit.services import audit_record
from core.tenancy import HOSPITAL_CLAIM, token_belongs_here

logger = logging.getLogger(__name__)
FAMILY_CLAIM = "family"


def ensure_token_belongs_here(token, request) -> None:
    if not token_belongs_here(token, request):
        raise InvalidToken("Token is invalid or expired")


class HospitalTokenObtainPairSerializer(TokenObtainPairSerializer):
    """dj-rest-auth's JWT_TOKEN_CLAIMS_SERIALIZER: adds the hospital claim.

    The access token copies the refresh token's claims, and rotation keeps them.
    """

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)  # simplejwt records it as outstanding
        token[HOSPITAL_CLAIM] = user.hospital_id
        # One family per login: rotation keeps it, so a rotated-away token
        # presented again can take its whole family down (theft detection).
        token[FAMILY_CLAIM] = uuid.uuid4().hex
        refresh_token_family_record(jti=token["jti"], family=token[FAMILY_CLAIM])
        return token


def refresh_token_family_record(*, jti: str, family: str) -> None:
    """Notes which family the outstanding refresh token `jti` belongs to (at login and at each rotation).

    One statement (it was three: the token's id, then get_or_create's SELECT and INSERT): on every login
    and refresh.
    """
    table = connection.ops.quote_name(RefreshTokenFamily._meta.db_table)
    outstanding = connection.ops.quote_name(OutstandingToken._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (outstanding_id, family) SELECT id, %s FROM {outstanding} WHERE jti = %s"
            " ON CONFLICT (outstanding_id) DO NOTHING",
            [family, jti],
        )


def refresh_token_from(request) -> tuple[object, bool]:
    """The refresh token a request presents, and whether it came from the cookie (else from the body).

    The body wins, as in dj-rest-auth: native apps and scripts send it there, browsers keep it in the cookie.
    """
    data = request.data if isinstance(request.data, dict) else {}
    if data.get("refresh") not in (None, ""):
        return data["refresh"], False
    return request.COOKIES.get(rest_auth_settings.JWT_AUTH_REFRESH_COOKIE), True


def refresh_token_here(raw, request) -> RefreshToken:
    """The refresh token `raw`, if it may be used at the request's hospital; else InvalidToken.

    Every refusal is the same 401 (malformed, expired, rotated away, another hospital's), and the hospital
    claim is checked before the blacklist: a token of another hospital gets exactly an invalid token's answer.
    A rotated-away token still proves that a copy exists wherever it shows up, so its family is revoked
    even at another hospital, and recorded in the trail of the token's own hospital.
    """
    try:
        claims = UntypedToken(raw)  # signature and expiry: whose token is it?
    except TokenError as exc:
        raise InvalidToken() from exc
    if not token_belongs_here(claims, request):
        refresh_token_reuse_revoke(raw=raw, elsewhere=True)
        raise InvalidToken()
    try:
        return RefreshToken(raw)  # its type and the blacklist
    except TokenError as exc:
        refresh_token_reuse_revoke(raw=raw)
        raise InvalidToken() from exc


class HospitalTokenRefreshSerializer(CookieTokenRefreshSerializer):
    """Refresh from the body (or else the cookie), only on the hospital the token names."""

    def extract_refresh_token(self):
        raw, _ = refresh_token_from(self.context["request"])
        if raw is None:
            raise InvalidToken("No valid refresh token found.")
        return raw

    def validate(self, attrs):
        refresh_token_here(self.extract_refresh_token(), self.context["request"])
        data = super().validate(attrs)
        if data.get("refresh"):  # rotated: the new token, just minted and outstanding, joins its family
            claims = jwt.decode(data["refresh"], options={"verify_signature": False})
            if claims.get(FAMILY_CLAIM):
                refresh_token_family_record(jti=claims["jti"], family=claims[FAMILY_CLAIM])
        return data


def refresh_token_reuse_revoke(*, raw: str, elsewhere: bool = False) -> bool:
    """A genuine refresh token that was already rotated away (or logged out) is presented again.

    Either the client or a thief holds a copy; we cannot tell which, so the
    whole family (every token descending from that login) is revoked, and the
    event goes to the trail of the token's hospital (`elsewhere`: presented at
    another one). Returns whether that happened.
    """
    try:
        token = UntypedToken(raw)  # type: ignore[arg-type]  # (its stub says Token) signature and expiry only
    except TokenError:
        return False
    if token.get("token_type") != "refresh" or not BlacklistedToken.objects.filter(token__jti=token["jti"]).exists():
        return False
    revoked = refresh_tokens_revoke(user_id=int(token["user_id"]), family=token.get(FAMILY_CLAIM))
    logger.warning("Refresh token reuse for user %s: revoked %s token(s) of its family", token["user_id"], revoked)
    schema = _home_schema(token)
    if schema is None:  # its hospital is gone: nowhere to record it but the log
        return True
    with schema_context(schema):
        audit_record(
            action=AuditEvent.Action.REFRESH_TOKEN_REUSED,
            target_type="accounts.user",
            target_id=token["user_id"],
            detail={"revoked_tokens": revoked, **({"presented_elsewhere": True} if elsewhere else {})},
        )
    return True


def _home_schema(token) -> str | None:
    """The schema of the hospital a token was issued for (public: the platform's), if it still exists."""
    hospital_id = token.get(HOSPITAL_CLAIM)
    if hospital_id is None:
        return get_public_schema_name()
    return get_tenant_model().objects.filter(pk=hospital_id).values_list("schema_name", flat=True).first()


def refresh_tokens_revoke(*, user_id: int, family: str | None = None) -> int:
    """Blacklists the user's live refresh tokens (only `family`'s, if given); returns how many."""
    live = OutstandingToken.objects.filter(
        user_id=user_id, blacklistedtoken__isnull=True, expires_at__gt=timezone.now()
    )
    if family is not None:
        live = live.filter(family__family=family)
    ids = list(live.values_list("pk", flat=True))
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token_id=pk) for pk in ids], ignore_conflicts=True)
    return len(ids)


class HospitalTokenVerifySerializer(TokenVerifySerializer):
    def validate(self, attrs):
        ensure_token_belongs_here(UntypedToken(attrs["token"]), self.context["request"])
        return super().validate(attrs)
