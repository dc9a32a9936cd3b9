"""How second-factor secrets are kept at rest: TOTP secrets encrypted, recovery codes hashed.

The key comes from settings (`MFA_ENCRYPTION_KEYS`, Fernet keys; the first encrypts, all decrypt, so a key
can be rotated), else one derived from SECRET_KEY: a database dump alone then holds neither usable secrets
nor codes that can be checked offline.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@functools.lru_cache(maxsize=4)
def _keys(configured: tuple[str, ...], secret_key: str) -> tuple[MultiFernet, bytes]:
    if not configured:
        derived = hashlib.sha256(b"accounts.mfa.crypto:" + secret_key.encode()).digest()
        configured = (base64.urlsafe_b64encode(derived).decode(),)
    fernets = [Fernet(key.encode()) for key in configured]
    hash_key = hashlib.sha256(b"recovery-codes:" + configured[0].encode()).digest()
    return MultiFernet(fernets), hash_key


def _current() -> tuple[MultiFernet, bytes]:
    return _keys(tuple(settings.MFA_ENCRYPTION_KEYS), settings.SECRET_KEY)


def secret_encrypt(text: str) -> str:
    return _current()[0].encrypt(text.encode()).decode()


def secret_decrypt(token: str, *, max_age: int | None = None) -> str:
    """Raises cryptography's InvalidToken if `token` was altered, is not ours, or is older than `max_age` s."""
    return _current()[0].decrypt(token.encode(), ttl=max_age).decode()


def code_hash(code: str) -> str:
    """A keyed hash of a recovery code (random, 50 bits, tried on the attempt budget: a slow hash buys nothing)."""
    return hmac.new(_current()[1], code.encode(), hashlib.sha256).hexdigest()
