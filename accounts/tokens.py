"""JWTs that name their hospital, and the check that they are used nowhere else."""
import logging
import uuid

import jwt
from dj_rest_auth.jwt_auth import CookieTokenRefreshSerializer
from django.utils import timezone
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenVerifySerializer
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from accounts.tenancy import HOSPITAL_CLAIM, token_belongs_here
from audit.models import AuditEvent
from audit.services import audit_record

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
        token = super().get_token(user)
        token[HOSPITAL_CLAIM] = user.hospital_id
        # One family per login: rotation keeps it, so a rotated-away token
        # presented again can take its whole family down (theft detection).
        token[FAMILY_CLAIM] = uuid.uuid4().hex
        return token


class HospitalTokenRefreshSerializer(CookieTokenRefreshSerializer):
    """Refresh from the cookie (or the body), only on the hospital the token names."""

    def validate(self, attrs):
        raw = self.extract_refresh_token()
        try:
            token = RefreshToken(raw)
        except TokenError:
            refresh_token_reuse_revoke(raw=raw)
            raise
        ensure_token_belongs_here(token, self.context["request"])
        return super().validate(attrs)


def refresh_token_reuse_revoke(*, raw: str) -> bool:
    """A genuine refresh token that was already rotated away (or logged out) is presented again.

    Either the client or a thief holds a copy; we cannot tell which, so the
    whole family (every token descending from that login) is revoked.
    Returns whether that happened.
    """
    try:
        token = UntypedToken(raw)  # signature and expiry only, not the blacklist
    except TokenError:
        return False
    if token.get("token_type") != "refresh" or not BlacklistedToken.objects.filter(token__jti=token["jti"]).exists():
        return False
    revoked = refresh_tokens_revoke(user_id=int(token["user_id"]), family=token.get(FAMILY_CLAIM))
    audit_record(action=AuditEvent.Action.REFRESH_TOKEN_REUSED, target_type="accounts.user",
                 target_id=token["user_id"], detail={"revoked_tokens": revoked})
    logger.warning("Refresh token reuse for user %s: revoked %s token(s) of its family", token["user_id"], revoked)
    return True


def refresh_tokens_revoke(*, user_id: int, family: str | None = None) -> int:
    """Blacklists the user's live refresh tokens (only `family`'s, if given); returns how many."""
    revoked = 0
    live = OutstandingToken.objects.filter(user_id=user_id, blacklistedtoken__isnull=True,
                                           expires_at__gt=timezone.now())
    for outstanding in live:
        if family is not None:
            claims = jwt.decode(outstanding.token, options={"verify_signature": False})
            if claims.get(FAMILY_CLAIM) != family:
                continue
        BlacklistedToken.objects.get_or_create(token=outstanding)
        revoked += 1
    return revoked


class HospitalTokenVerifySerializer(TokenVerifySerializer):
    def validate(self, attrs):
        ensure_token_belongs_here(UntypedToken(attrs["token"]), self.context["request"])
        return super().validate(attrs)
