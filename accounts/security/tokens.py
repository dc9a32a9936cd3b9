"""Refresh token families: where a token may be used, rotation, the reuse grace window, reuse detection and
revocation.

The serializers that call these live in accounts/serializers.py.
"""

import logging
import uuid

from dj_rest_auth.app_settings import api_settings as rest_auth_settings
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
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


def refresh_token_family_start(token) -> None:
    """A login's refresh token starts a family: rotation keeps its claim, so a rotated-away token presented
    again can take its whole family down (theft detection)."""
    token[FAMILY_CLAIM] = uuid.uuid4().hex
    refresh_token_family_record(jti=token["jti"], family=token[FAMILY_CLAIM])


def refresh_token_family_record(*, jti: str, family: str) -> None:
    """Notes which family the outstanding refresh token `jti` belongs to (at login).

    One statement (it was three: the token's id, then get_or_create's SELECT and INSERT), on every login.
    """
    table = connection.ops.quote_name(RefreshTokenFamily._meta.db_table)
    outstanding = connection.ops.quote_name(OutstandingToken._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (outstanding_id, family, reuse_granted) SELECT id, %s, false FROM {outstanding}"
            " WHERE jti = %s ON CONFLICT (outstanding_id) DO NOTHING",
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


def _claims_here(raw, request) -> UntypedToken:
    """The claims of `raw` if its signature and expiry hold and it may be used at the request's hospital.

    The hospital is checked before anything else: a token of another hospital gets exactly an invalid
    token's answer. A rotated-away token still proves that a copy exists wherever it shows up, so its
    family is revoked even at another hospital (no grace there), and recorded in its own hospital's trail.
    """
    try:
        claims = UntypedToken(raw)  # signature and expiry: whose token is it?
    except TokenError as exc:
        raise InvalidToken() from exc
    if not token_belongs_here(claims, request):
        refresh_token_reuse_revoke(raw=raw, elsewhere=True)
        raise InvalidToken()
    return claims


def refresh_token_here(raw, request) -> RefreshToken:
    """The refresh token `raw`, if it may be used at the request's hospital and is live; else InvalidToken.

    Every refusal is the same 401 (malformed, expired, rotated away, another hospital's); a rotated-away
    token revokes its family (logout has no grace window: ending the session is what it asks for).
    """
    _claims_here(raw, request)
    try:
        return RefreshToken(raw)  # its type and the blacklist
    except TokenError as exc:
        refresh_token_reuse_revoke(raw=raw)
        raise InvalidToken() from exc


def refresh_token_rotate(*, raw, request) -> dict[str, str]:
    """Exchanges the refresh token `raw` for an access token and its family's next refresh token.

    One token, one exchange at a time: the presented token's outstanding row is locked (FOR NO KEY UPDATE)
    for the whole exchange, so concurrent requests with one token take turns, each seeing what the one
    before it did. Then, for the presented token P:

    - P is live: it is blacklisted and a successor S of its family minted (P -> S, recorded with its time);
    - P was rotated into S, S is still live (the family's current token), P is presented within
      REFRESH_TOKEN_REUSE_INTERVAL of that rotation, and for the first time since: two tabs or threads
      refreshed at once. The answer is S itself with a new access token; nothing is minted or revoked, so a
      family never has more than one live refresh token, whatever the number of concurrent presentations;
    - otherwise (P presented again after its one grace, after the window, an older ancestor, a logged-out
      token): reuse. A copy exists somewhere; the family is revoked and audited, InvalidToken.
    """
    claims = _claims_here(raw, request)
    with transaction.atomic():
        presented = OutstandingToken.objects.select_for_update(no_key=True).filter(jti=claims.get("jti")).first()
        try:
            token = RefreshToken(raw)  # its type, and the blacklist as the holder of the lock before us left it
        except TokenError:
            pair = _reuse_grace(presented) if presented is not None else None
        else:
            pair = _rotate(token, presented)
    if pair is None:
        refresh_token_reuse_revoke(raw=raw)
        raise InvalidToken()
    return pair


def _ensure_user_active(token: RefreshToken) -> None:
    """As simplejwt's refresh does: a deactivated account gets no new tokens."""
    user = get_user_model().objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
        raise AuthenticationFailed("No active account found for the given token.", "no_active_account")


def _rotate(token: RefreshToken, presented: OutstandingToken | None) -> dict[str, str]:
    _ensure_user_active(token)
    access = str(token.access_token)
    token.blacklist()
    token.set_jti()
    token.set_exp()
    token.set_iat()
    token.outstand()
    successor = OutstandingToken.objects.get(jti=token[jwt_settings.JTI_CLAIM])
    family = token.get(FAMILY_CLAIM)
    if family:
        RefreshTokenFamily.objects.create(outstanding=successor, family=family)
        RefreshTokenFamily.objects.filter(outstanding=presented).update(successor=successor, rotated_at=timezone.now())
    return {"access": access, "refresh": str(token)}


def _reuse_grace(presented: OutstandingToken) -> dict[str, str] | None:
    """The answer to a rotated-away token presented again inside its grace, or None (reuse)."""
    link = RefreshTokenFamily.objects.filter(outstanding=presented).first()
    window = settings.REFRESH_TOKEN_REUSE_INTERVAL
    if link is None or link.successor_id is None or link.rotated_at is None or link.reuse_granted:
        return None
    if timezone.now() - link.rotated_at >= window:
        return None
    # Locked as its own rotation would lock it: either that rotation has happened (the successor is no
    # longer the current token, so this is an older ancestor) or it waits until this answer is given.
    successor = OutstandingToken.objects.select_for_update(no_key=True).filter(pk=link.successor_id).first()
    if successor is None or BlacklistedToken.objects.filter(token=successor).exists():
        return None
    try:
        current = RefreshToken(successor.token)  # type: ignore[arg-type]  # (its stub says Token)
    except TokenError:  # expired meanwhile
        return None
    _ensure_user_active(current)
    link.reuse_granted = True
    link.save(update_fields=["reuse_granted"])
    logger.info("Refresh token presented again within the reuse interval: answered with its successor")
    return {"access": str(current.access_token), "refresh": successor.token}


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
