from dj_rest_auth.jwt_auth import JWTCookieAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.tenancy import token_belongs_here, user_belongs_here


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
