"""The IdP client secret, encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Keys: SSO_SECRET_KEYS (comma-separated Fernet keys, newest first: add a new one in front to rotate, re-save,
then drop the old one), or else one derived from SECRET_KEY with HKDF, so a development set-up needs nothing.
A database dump alone never reveals a hospital's client secret.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet() -> MultiFernet:
    keys = [key for key in settings.SSO_SECRET_KEYS if key]
    if not keys:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sso-client-secret", info=b"fernet").derive(
            settings.SECRET_KEY.encode()
        )
        keys = [base64.urlsafe_b64encode(derived).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def secret_encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    """The plain secret; "" if no configured key opens it (the admin must enter it again)."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return ""
