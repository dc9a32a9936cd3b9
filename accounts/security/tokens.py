"""Refresh token families: where a token may be used, rotation, the reuse grace window, reuse detection and
revocation.

The serializers that call these live in accounts/serializers.py.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from dj_rest_auth.app_settings import api_settings as rest_auth_settings
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, get_tenant_model, schema_context
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from accounts.models import LoginSession, RefreshTokenFamily
from audit.models import AuditEvent
from audit.services import audit_record
from core.http import client_ip
from core.tenancy import HOSPITAL_CLAIM, token_belongs_here

logger = logging.getLogger(__name__)
FAMILY_CLAIM = "family"


def ensure_token_belongs_here(token, request) -> None:
    if not token_belongs_here(token, request):
        raise InvalidToken("Token is invalid or expired")


def _table(model) -> str:
    """Schema-qualified: the token and session tables live in public whatever the search_path."""
    return f"public.{connection.ops.quote_name(model._meta.db_table)}"


def session_start(*, user, request=None) -> RefreshToken:
    """A login: the refresh token of a new family, and the session (accounts.LoginSession) that family is.

    The one way a session begins (password login, invitation acceptance; a login with more steps, MFA or
    SSO, calls it once they are all done). `request` gives the session its client address and user agent.
    The access token is `token.access_token`: it copies the hospital and family claims.
    """
    token = RefreshToken.for_user(user)  # simplejwt records it as outstanding
    token[HOSPITAL_CLAIM] = user.hospital_id
    token[FAMILY_CLAIM] = uuid.uuid4().hex
    _session_record(token, request)
    return token


def _session_record(token: RefreshToken, request) -> None:
    """The session row and the token's family row, in one statement (on every login).

    The session's first deadline is the earliest of the refresh token's expiry and the hospital's
    absolute and idle limits (tenants.Hospital.session_*_minutes; NULL ones play no part in LEAST).
    """
    user_model = get_user_model()
    hospital_model = user_model._meta.get_field("hospital").related_model
    now = timezone.now()
    address = client_ip(request) if request is not None else None
    agent = (request.META.get("HTTP_USER_AGENT") or "")[:500] if request is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH o AS (SELECT id, user_id FROM {_table(OutstandingToken)} WHERE jti = %(jti)s),"
            f" s AS (INSERT INTO {_table(LoginSession)}"
            " (id, user_id, created, last_used, client_address, user_agent, expires_at, end_reason)"
            " SELECT %(family)s, o.user_id, %(now)s, %(now)s, %(address)s, %(agent)s,"
            " LEAST(%(exp)s, %(now)s + make_interval(mins => h.session_idle_minutes),"
            " %(now)s + make_interval(mins => h.session_max_minutes)), ''"
            f" FROM o JOIN {_table(user_model)} u ON u.id = o.user_id"
            f" LEFT JOIN {_table(hospital_model)} h ON h.id = u.hospital_id)"
            f" INSERT INTO {_table(RefreshTokenFamily)} (outstanding_id, family, reuse_granted)"
            " SELECT id, %(family)s, false FROM o",
            {
                "jti": token[jwt_settings.JTI_CLAIM],
                "family": token[FAMILY_CLAIM],
                "now": now,
                "address": address,
                "agent": agent,
                "exp": datetime_from_epoch(token["exp"]),
            },
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

    One token, one exchange at a time: the presented token's family row and its session are locked
    (FOR NO KEY UPDATE) for the whole exchange, so concurrent requests with one token take turns, each
    seeing what the one before it did, and a session end (which updates the session row) waits for a
    rotation in flight or is seen by it. Then, for the presented token P:

    - its session has ended (logout, a session end, a password change, the hospital's idle or absolute
      limit): InvalidToken;
    - P is live: it is blacklisted and a successor S of its family minted (P -> S, recorded with its time);
    - P was rotated into S, S is still live (the family's current token), P is presented within
      REFRESH_TOKEN_REUSE_INTERVAL of that rotation, and for the first time since: two tabs or threads
      refreshed at once. The answer is S itself with a new access token; nothing is minted or revoked, so a
      family never has more than one live refresh token, whatever the number of concurrent presentations;
    - otherwise (P presented again after its one grace, after the window, an older ancestor): reuse. A copy
      exists somewhere; the family is revoked and audited, InvalidToken.

    Three statements on the way through (the state under the locks, the whole rotation, COMMIT).
    """
    claims = _claims_here(raw, request)
    if claims.get("token_type") != "refresh":
        raise InvalidToken()
    with transaction.atomic():
        state = _rotation_state(claims)
        if state is None or not state.session_live:
            raise InvalidToken()
        if not state.user_active:
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        if state.blacklisted or state.rotated:
            pair = _reuse_grace(state.presented)
        else:
            pair = _rotate(RefreshToken(raw, verify=False), state)  # verified above by UntypedToken
    if pair is None:
        refresh_token_reuse_revoke(raw=raw)
        raise InvalidToken()
    return pair


@dataclass(frozen=True)
class _RotationState:
    presented: int  # the outstanding token's id
    user_id: int
    blacklisted: bool
    rotated: bool
    user_active: bool
    session_live: bool
    session_created: datetime
    idle_minutes: int | None
    max_minutes: int | None


def _rotation_state(claims) -> _RotationState | None:
    """The presented token's state, read with its family row and its session locked (one statement).

    What a concurrent holder of those locks changed is read from the locked rows themselves, as
    PostgreSQL re-reads them after the wait: the family row's successor (rotated away) and the session's
    end. (A blacklist row written meanwhile is not seen in this statement; the successor says the same.)
    """
    user_model = get_user_model()
    hospital_model = user_model._meta.get_field("hospital").related_model
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.id, o.user_id, b.id IS NOT NULL, f.successor_id IS NOT NULL, u.is_active,"
            " s.ended_at IS NULL AND s.expires_at > %(now)s, s.created,"
            " h.session_idle_minutes, h.session_max_minutes"
            f" FROM {_table(OutstandingToken)} o"
            f" JOIN {_table(RefreshTokenFamily)} f ON f.outstanding_id = o.id"
            f" JOIN {_table(LoginSession)} s ON s.id = f.family"
            f" JOIN {_table(user_model)} u ON u.id = o.user_id"
            f" LEFT JOIN {_table(hospital_model)} h ON h.id = u.hospital_id"
            f" LEFT JOIN {_table(BlacklistedToken)} b ON b.token_id = o.id"
            " WHERE o.jti = %(jti)s FOR NO KEY UPDATE OF f, s",
            {"jti": claims.get(jwt_settings.JTI_CLAIM), "now": timezone.now()},
        )
        row = cursor.fetchone()
    return None if row is None else _RotationState(*row)


def session_live(session_id: str | None) -> bool:
    """Whether the session `session_id` still accepts its tokens (the authenticated request asks the same
    inside its user statement, accounts/authentication.py)."""
    return (
        session_id is not None
        and LoginSession.objects.filter(pk=session_id, ended_at__isnull=True, expires_at__gt=timezone.now()).exists()
    )


def session_deadline(*, now: datetime, refresh_expires: datetime, created: datetime, idle_minutes, max_minutes):
    """When a session used at `now` ends if it is not used again: the earliest of its limits."""
    deadlines = [refresh_expires]
    if idle_minutes:
        deadlines.append(now + timedelta(minutes=idle_minutes))
    if max_minutes:
        deadlines.append(created + timedelta(minutes=max_minutes))
    return min(deadlines)


def _rotate(token: RefreshToken, state: _RotationState) -> dict[str, str]:
    """P -> S in one statement: P blacklisted, S outstanding in P's family, P's link to S, the session's use."""
    access = str(token.access_token)
    token.set_jti()
    token.set_exp()
    token.set_iat()
    now = timezone.now()
    expires = datetime_from_epoch(token["exp"])
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH b AS (INSERT INTO {_table(BlacklistedToken)} (token_id, blacklisted_at)"
            " VALUES (%(presented)s, %(now)s) ON CONFLICT (token_id) DO NOTHING),"
            f" n AS (INSERT INTO {_table(OutstandingToken)} (user_id, jti, token, created_at, expires_at)"
            " VALUES (%(user)s, %(jti)s, %(token)s, %(created)s, %(expires)s) RETURNING id),"
            f" f AS (INSERT INTO {_table(RefreshTokenFamily)} (outstanding_id, family, reuse_granted)"
            " SELECT id, %(family)s, false FROM n),"
            f" p AS (UPDATE {_table(RefreshTokenFamily)} SET successor_id = (SELECT id FROM n), rotated_at = %(now)s"
            " WHERE outstanding_id = %(presented)s)"
            f" UPDATE {_table(LoginSession)} SET last_used = %(now)s, expires_at = %(deadline)s WHERE id = %(family)s",
            {
                "presented": state.presented,
                "now": now,
                "user": state.user_id,
                "jti": token[jwt_settings.JTI_CLAIM],
                "token": str(token),
                "created": token.current_time,
                "expires": expires,
                "family": token[FAMILY_CLAIM],
                "deadline": session_deadline(
                    now=now,
                    refresh_expires=expires,
                    created=state.session_created,
                    idle_minutes=state.idle_minutes,
                    max_minutes=state.max_minutes,
                ),
            },
        )
    return {"access": access, "refresh": str(token)}


def _reuse_grace(presented: int) -> dict[str, str] | None:
    """The answer to a rotated-away token presented again inside its grace, or None (reuse)."""
    link = RefreshTokenFamily.objects.filter(outstanding_id=presented).first()
    window = settings.REFRESH_TOKEN_REUSE_INTERVAL
    if link is None or link.successor_id is None or link.rotated_at is None or link.reuse_granted:
        return None
    if timezone.now() - link.rotated_at >= window:
        return None
    # The session is locked (_rotation_state): the successor's own rotation either has happened (it is
    # blacklisted: this is an older ancestor) or waits until this answer is given.
    successor = OutstandingToken.objects.filter(pk=link.successor_id).first()
    if successor is None or BlacklistedToken.objects.filter(token=successor).exists():
        return None
    try:
        current = RefreshToken(successor.token)  # type: ignore[arg-type]  # (its stub says Token)
    except TokenError:  # expired meanwhile
        return None
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


def refresh_tokens_revoke(*, user_id: int, family: str | None = None, reason: str = "revoked") -> int:
    """Ends the user's sessions (only `family`'s, if given) and blacklists their live refresh tokens;
    returns how many tokens."""
    return sessions_end(user_id=user_id, only=family, reason=reason)[1]


def sessions_end(
    *, user_id: int, reason: str, only: str | None = None, keep: str | None = None
) -> tuple[list[str], int]:
    """Ends the user's live sessions (only the session `only`, or all but `keep`): their access tokens are
    refused from the next request on, their refresh tokens are blacklisted. Returns the ended sessions' ids
    and the number of refresh tokens blacklisted.

    The session rows are updated first: that waits for a rotation in flight in one of them (it holds the
    row, `_rotation_state`), so the blacklist, read afterwards, sees the successor it committed.
    """
    now = timezone.now()
    sessions, tokens, params = "", "", []  # the same condition on the session id and on the token's family
    if only is not None:
        sessions, tokens = " AND s.id = %s", " AND f.family = %s"
        params.append(only)
    if keep is not None:
        sessions, tokens = sessions + " AND s.id <> %s", tokens + " AND f.family IS DISTINCT FROM %s"
        params.append(keep)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(LoginSession)} s SET ended_at = %s, end_reason = %s"
            f" WHERE s.user_id = %s AND s.ended_at IS NULL{sessions} RETURNING s.id",
            [now, reason, user_id, *params],
        )
        ended = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"INSERT INTO {_table(BlacklistedToken)} (token_id, blacklisted_at) SELECT o.id, %s"
            f" FROM {_table(OutstandingToken)} o LEFT JOIN {_table(RefreshTokenFamily)} f ON f.outstanding_id = o.id"
            f" WHERE o.user_id = %s AND o.expires_at > %s{tokens}"
            f" AND NOT EXISTS (SELECT 1 FROM {_table(BlacklistedToken)} b WHERE b.token_id = o.id)"
            " ON CONFLICT (token_id) DO NOTHING",
            [now, user_id, now, *params],
        )
        revoked = cursor.rowcount
    return ended, revoked


def sessions_purge(*, after: timedelta = timedelta(days=7)) -> int:
    """Deletes the sessions over (ended or past their deadline) for longer than `after`; returns how many.

    Their tokens are refused either way; the rows are kept a while so that "who was logged in" can be
    answered for recent days (the audit trail keeps the events for good).
    """
    cutoff = timezone.now() - after
    deleted, _ = LoginSession.objects.filter(Q(ended_at__lt=cutoff) | Q(expires_at__lt=cutoff)).delete()
    return deleted
