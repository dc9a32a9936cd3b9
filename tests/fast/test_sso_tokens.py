"""The id_token checks of single sign-on (sso/oidc.py), on tokens signed here: what a real IdP does not issue
on request (a wrong nonce, an expired token, another audience, `alg: none`, an HMAC with the client secret).

The IdP's discovery document and key set are put in the cache, where sso/oidc.py looks first.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from django.core.cache import cache
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from sso import oidc

NONCE = "n-0123456789"


@pytest.fixture
def idp():
    issuer = f"https://idp-{uuid.uuid4().hex[:8]}.example"
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
    }
    cache.set(f"sso:discovery:{issuer}", document, 600)
    cache.set(f"sso:jwks:{issuer}/jwks", {"keys": [key.as_dict(private=False)]}, 600)
    client = oidc.Client(issuer=issuer, client_id="app", client_secret="client-secret-0123456789", scopes="openid")
    return client, key


def sign(key, claims: dict, alg: str = "RS256", kid: str | None = "k1") -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, claims, key)


def claims_for(client, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": client.issuer, "aud": client.client_id, "sub": "s1", "iat": now, "exp": now + 300, "nonce": NONCE}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_good_id_token_passes(idp):
    client, key = idp
    claims = oidc.id_token_validate(client, id_token=sign(key, claims_for(client)), nonce=NONCE)
    assert claims["sub"] == "s1"


@pytest.mark.parametrize(
    "changes",
    [
        {"nonce": "another-nonce"},
        {"nonce": None},
        {"exp": int(time.time()) - 3600},
        {"iat": None},
        {"aud": "another-app"},
        {"aud": ["app", "another-app"]},  # several audiences and no azp
        {"iss": "https://attacker.example"},
        {"sub": None},
    ],
    ids=["wrong-nonce", "no-nonce", "expired", "no-iat", "other-audience", "no-azp", "other-issuer", "no-sub"],
)
def test_an_id_token_failing_a_check_is_refused(idp, changes):
    client, key = idp
    with pytest.raises(oidc.TokenInvalid):
        oidc.id_token_validate(client, id_token=sign(key, claims_for(client, **changes)), nonce=NONCE)


def test_several_audiences_need_azp(idp):
    client, key = idp
    token = sign(key, claims_for(client, aud=["app", "another-app"], azp="app"))
    assert oidc.id_token_validate(client, id_token=token, nonce=NONCE)["azp"] == "app"


def test_unsigned_hmac_or_foreign_signatures_are_refused(idp):
    client, key = idp
    claims = claims_for(client)
    segment = lambda data: base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()  # noqa: E731
    unsigned = f"{segment({'alg': 'none'})}.{segment(claims)}."
    hmac = sign(OctKey.import_key(client.client_secret.encode()), claims, alg="HS256", kid=None)
    stranger = sign(RSAKey.generate_key(2048, parameters={"kid": "k1"}), claims)  # same kid, another key
    for token in (unsigned, hmac, stranger, "not-a-jwt"):
        with pytest.raises(oidc.TokenInvalid):
            oidc.id_token_validate(client, id_token=token, nonce=NONCE)


def test_issuer_must_be_https_outside_development(settings):
    settings.SSO_ALLOW_HTTP_ISSUERS = False
    with pytest.raises(ValueError):
        oidc.issuer_validate("http://idp.example")
    for bad in ("https://idp.example/?x=1", "ftp://idp.example", "https://"):
        with pytest.raises(ValueError):
            oidc.issuer_validate(bad)
    assert oidc.issuer_validate("https://idp.example/tenant/") == "https://idp.example/tenant"
