"""JWTs that name their hospital, and the check that they are used nowhere else."""
from dj_rest_auth.jwt_auth import CookieTokenRefreshSerializer
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenVerifySerializer
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from accounts.tenancy import HOSPITAL_CLAIM, token_belongs_here


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
        return token


class HospitalTokenRefreshSerializer(CookieTokenRefreshSerializer):
    """Refresh from the cookie (or the body), only on the hospital the token names."""

    def validate(self, attrs):
        ensure_token_belongs_here(RefreshToken(self.extract_refresh_token()), self.context["request"])
        return super().validate(attrs)


class HospitalTokenVerifySerializer(TokenVerifySerializer):
    def validate(self, attrs):
        ensure_token_belongs_here(UntypedToken(attrs["token"]), self.context["request"])
        return super().validate(attrs)
