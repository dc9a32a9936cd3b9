"""The OpenID Connect relying party, on Authlib (authorization URL with PKCE, code exchange) and joserfc
(id_token signature against the IdP's JWKS, and its claims). No Django models here: sso/services.py decides
what a validated identity may do.

Discovery documents and key sets are cached per issuer (the shared cache); an id_token signed with a key id
the cached set does not hold refetches the set once, so a key rotation at the IdP needs nothing from us.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

logger = logging.getLogger(__name__)

# Signature algorithms we accept for id_tokens (never "none", never HMAC with the client secret).
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CACHE_SECONDS = 3600


class IdPUnavailable(Exception):
    """The IdP did not answer, or answered something that is not its protocol."""


class IdPRefused(Exception):
    """The IdP answered with an OAuth error (e.g. `invalid_grant` for a used or expired code)."""


class TokenInvalid(Exception):
    """The id_token failed a check; the message names which."""


@dataclass(frozen=True)
class Client:
    """One hospital's registration at its IdP."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str


def issuer_validate(issuer: str) -> str:
    """The issuer as configured: https (http only where SSO_ALLOW_HTTP_ISSUERS, i.e. development and tests),
    no query or fragment, no trailing slash."""
    parts = urlsplit(issuer.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("The issuer must be an https URL without query or fragment.")
    if parts.scheme == "http" and not settings.SSO_ALLOW_HTTP_ISSUERS:
        raise ValueError("The issuer must use https.")
    return issuer.strip().rstrip("/")


def _get_json(url: str) -> dict:
    # No redirects: the issuer an admin typed is the only host we talk to about it.
    try:
        response = requests.get(url, timeout=settings.SSO_HTTP_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdPUnavailable(f"{url}: {exc.__class__.__name__}") from exc
    if not isinstance(document, dict):
        raise IdPUnavailable(f"{url}: not a JSON object")
    return document


def discovery(issuer: str, *, fresh: bool = False) -> dict:
    """The IdP's discovery document, checked to name this very issuer (OpenID Connect Discovery 4.3)."""
    key = f"sso:discovery:{issuer}"
    document = None if fresh else cache.get(key)
    if document is None:
        document = _get_json(f"{issuer}/.well-known/openid-configuration")
        for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise IdPUnavailable(f"discovery document without {field}")
        if document["issuer"].rstrip("/") != issuer:
            raise IdPUnavailable(f"discovery names issuer {document['issuer']!r}, not {issuer!r}")
        cache.set(key, document, CACHE_SECONDS)
    return document


def key_set(jwks_uri: str, *, fresh: bool = False) -> dict:
    key = f"sso:jwks:{jwks_uri}"
    jwks = None if fresh else cache.get(key)
    if jwks is None:
        jwks = _get_json(jwks_uri)
        if not isinstance(jwks.get("keys"), list):
            raise IdPUnavailable("JWKS without keys")
        cache.set(key, jwks, CACHE_SECONDS)
    return jwks


def authorization_url(client: Client, *, redirect_uri: str, state: str, nonce: str, code_verifier: str) -> str:
    document = discovery(client.issuer)
    session = OAuth2Session(
        client.client_id,
        client.client_secret,
        scope=client.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    url, _ = session.create_authorization_url(
        document["authorization_endpoint"], state=state, nonce=nonce, code_verifier=code_verifier
    )
    return url


def code_exchange(client: Client, *, code: str, redirect_uri: str, code_verifier: str) -> dict:
    """The token endpoint's answer to the authorization code (client_secret_basic, PKCE verifier)."""
    document = discovery(client.issuer)
    session = OAuth2Session(
        client.client_id,
        client.client_secret,
        redirect_uri=redirect_uri,
        token_endpoint_auth_method="client_secret_basic",
    )
    try:
        token = session.fetch_token(
            document["token_endpoint"],
            grant_type="authorization_code",
            code=code,
            code_verifier=code_verifier,
            timeout=settings.SSO_HTTP_TIMEOUT,
            allow_redirects=False,
        )
    except OAuthError as exc:
        raise IdPRefused(exc.error or "invalid_grant") from exc
    except (requests.RequestException, ValueError) as exc:
        raise IdPUnavailable(f"token endpoint: {exc.__class__.__name__}") from exc
    finally:
        session.close()
    if not isinstance(token.get("id_token"), str):
        raise TokenInvalid("the token endpoint returned no id_token")
    return dict(token)


def _header_kid(id_token: str) -> str | None:
    try:
        segment = id_token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError) as exc:
        raise TokenInvalid("malformed id_token") from exc
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _signed_claims(client: Client, token: str) -> tuple[dict, dict]:
    """(the discovery document, the claims of `token`) once its signature holds against the IdP's JWKS."""
    document = discovery(client.issuer)
    jwks_uri = document["jwks_uri"]
    jwks = key_set(jwks_uri)
    kid = _header_kid(token)
    if kid is not None and kid not in {key.get("kid") for key in jwks["keys"]}:
        jwks = key_set(jwks_uri, fresh=True)  # a rotation at the IdP: one refetch
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=ID_TOKEN_ALGORITHMS)  # type: ignore[arg-type]
    except (JoseError, ValueError) as exc:
        raise TokenInvalid(f"signature: {exc.__class__.__name__}") from exc
    return document, decoded.claims


def id_token_validate(client: Client, *, id_token: str, nonce: str) -> dict:
    """The id_token's claims, once its signature (the IdP's JWKS), issuer, audience, authorized party, expiry,
    issue time and nonce hold (OpenID Connect Core 3.1.3.7)."""
    document, claims = _signed_claims(client, id_token)
    registry = jwt.JWTClaimsRegistry(
        leeway=settings.SSO_CLOCK_LEEWAY,
        iss={"essential": True, "value": document["issuer"]},  # exactly as the IdP spells it
        aud={"essential": True, "value": client.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise TokenInvalid(f"claims: {exc}") from exc
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audience) > 1 and claims.get("azp") != client.client_id:
        raise TokenInvalid("claims: azp")
    return claims


USERINFO_CLAIMS = ("email", "email_verified", "given_name", "family_name")


def claims_complete(client: Client, *, claims: dict, access_token: str | None) -> dict:
    """The id_token's claims, with the email and names from the UserInfo endpoint where the id_token has no
    email (conforming IdPs put scope-requested claims there: OpenID Connect Core 5.4). UserInfo must name the
    same `sub` (5.3.2), and it never overrides what the signed id_token said."""
    if "email" in claims or not access_token:
        return claims
    endpoint = discovery(client.issuer).get("userinfo_endpoint")
    if not isinstance(endpoint, str):
        return claims
    try:
        response = requests.get(
            endpoint,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=settings.SSO_HTTP_TIMEOUT,
            allow_redirects=False,
        )
        response.raise_for_status()
        info = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise IdPUnavailable(f"userinfo: {exc.__class__.__name__}") from exc
    if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
        raise TokenInvalid("userinfo: another sub")
    return {**{key: info[key] for key in USERINFO_CLAIMS if key in info}, **claims}


BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token_validate(client: Client, *, logout_token: str) -> dict:
    """A back-channel logout token's claims (OpenID Connect Back-Channel Logout 1.0, 2.6): signed by the IdP,
    for this client, recent, with the logout event and a `sub`, and no nonce (so no id_token passes as one)."""
    document, claims = _signed_claims(client, logout_token)
    registry = jwt.JWTClaimsRegistry(
        leeway=settings.SSO_CLOCK_LEEWAY,
        iss={"essential": True, "value": document["issuer"]},
        aud={"essential": True, "value": client.client_id},
        iat={"essential": True},
        jti={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise TokenInvalid(f"claims: {exc}") from exc
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise TokenInvalid("claims: events")
    if "nonce" in claims:
        raise TokenInvalid("claims: nonce")
    if claims["iat"] < time.time() - settings.SSO_SIGN_IN_SECONDS:
        raise TokenInvalid("claims: iat too old")
    return claims
