"""Single sign-on for one hospital (run in its schema): its IdP configuration, sign-ins, and which account an
IdP identity signs in as.

The protocol itself (discovery, PKCE, code exchange, id_token checks) is sso/oidc.py; answering a finished
sign-in like a login (tokens, cookies) is the view's (sso/views.py, `login_complete`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from accounts.addresses import InvalidEmail, canonical_email
from accounts.models import User
from accounts.security.tokens import refresh_tokens_revoke
from accounts.services import registration_unclaimed_release, user_create_verified
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from sso import oidc
from sso.crypto import secret_decrypt, secret_encrypt
from sso.models import Identity, IdentityProvider, SignIn
from staff.services import invitation_accept_by_identity, staff_member_create

logger = logging.getLogger(__name__)

# What an admin may change, and how the trail shows it (never the secret itself).
_AUDITED_FIELDS = (
    "issuer",
    "client_id",
    "scopes",
    "allowed_domains",
    "first_sign_in",
    "default_role",
    "enabled",
    "sso_required",
    "break_glass_emails",
)


def provider_get() -> IdentityProvider | None:
    return IdentityProvider.objects.first()


def _domain_canonical(domain: str) -> str:
    try:
        return canonical_email(f"x@{domain.strip().lstrip('@')}").partition("@")[2]
    except InvalidEmail as exc:
        raise ServiceError(f"{domain!r} is not a valid email domain.", field="allowed_domains") from exc


def provider_save(
    *,
    actor,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_domains: list[str],
    scopes: str = "openid email profile",
    first_sign_in: str = IdentityProvider.FirstSignIn.EXISTING,
    default_role: str = "nurse",
    enabled: bool = True,
    sso_required: bool = False,
    break_glass_emails: list[str] | None = None,
) -> IdentityProvider:
    """Creates or replaces the hospital's IdP. `client_secret` None keeps the stored one (required the first time)."""
    try:
        issuer = oidc.issuer_validate(issuer)
    except ValueError as exc:
        raise ServiceError(str(exc), code="issuer_invalid", field="issuer") from exc
    scope_list = scopes.split()
    if "openid" not in scope_list:
        raise ServiceError("The scopes must include openid.", field="scopes")
    domains = sorted({_domain_canonical(domain) for domain in allowed_domains})
    if not domains:
        raise ServiceError("Name at least one email domain this IdP may sign in.", field="allowed_domains")
    try:
        break_glass = sorted({canonical_email(email) for email in break_glass_emails or []})
    except InvalidEmail as exc:
        raise ServiceError(str(exc), field="break_glass_emails") from exc
    if sso_required and not break_glass:
        # Else an IdP outage locks the whole hospital out, its admins included.
        raise ServiceError("Name at least one break-glass account that keeps its password.", field="break_glass_emails")
    with transaction.atomic():
        provider = IdentityProvider.objects.select_for_update().first()
        if provider is None:
            if not client_secret:
                raise ServiceError("A client secret is required.", field="client_secret")
            provider = IdentityProvider()
        before = {field: getattr(provider, field) for field in _AUDITED_FIELDS} if provider.pk else {}
        provider.issuer, provider.client_id, provider.scopes = issuer, client_id, " ".join(scope_list)
        provider.allowed_domains, provider.first_sign_in, provider.default_role = domains, first_sign_in, default_role
        provider.enabled, provider.sso_required, provider.break_glass_emails = enabled, sso_required, break_glass
        if client_secret:
            provider.client_secret_encrypted = secret_encrypt(client_secret)
        provider.save()
        changes = {
            field: {"old": before.get(field), "new": getattr(provider, field)}
            for field in _AUDITED_FIELDS
            if before.get(field) != getattr(provider, field)
        }
        if client_secret:
            changes["client_secret"] = {"old": None, "new": "(changed)"}
        audit_record(
            action=AuditEvent.Action.SSO_CONFIGURED,
            actor=actor,
            target=provider,
            detail={"created": not before, "changes": changes},
        )
    return provider


def provider_delete(*, actor) -> None:
    """Turns SSO off: the configuration goes, linked identities stay (a new configuration of the same issuer
    finds them again)."""
    with transaction.atomic():
        provider = IdentityProvider.objects.select_for_update().first()
        if provider is None:
            raise ServiceError(
                "No identity provider is configured.", code="not_found", status=status.HTTP_404_NOT_FOUND
            )
        audit_record(action=AuditEvent.Action.SSO_CONFIGURED, actor=actor, target=provider, detail={"deleted": True})
        provider.delete()


def password_rule(*, hospital_id: int, email: str | None) -> bool:
    """accounts.policy's rule: where this hospital requires single sign-on, only its break-glass accounts
    use a password. Asked in the hospital's schema."""
    provider = IdentityProvider.objects.filter(enabled=True, sso_required=True).only("break_glass_emails").first()
    return provider is None or (email is not None and email in provider.break_glass_emails)


def _client(provider: IdentityProvider) -> oidc.Client:
    secret = secret_decrypt(provider.client_secret_encrypted)
    if not secret:
        raise ServiceError(
            "The client secret can no longer be read; an admin must enter it again.",
            code="sso_not_configured",
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return oidc.Client(
        issuer=provider.issuer, client_id=provider.client_id, client_secret=secret, scopes=provider.scopes
    )


def _unavailable(exc: Exception) -> ServiceError:
    logger.warning("sso: identity provider unavailable: %s", exc)
    return ServiceError(
        "The hospital's identity provider cannot be reached. Try again later.",
        code="idp_unavailable",
        status=status.HTTP_502_BAD_GATEWAY,
    )


def provider_test(*, provider: IdentityProvider) -> dict:
    """Fetches discovery and the JWKS afresh and reports what it found (nothing is stored)."""
    try:
        document = oidc.discovery(provider.issuer, fresh=True)
        jwks = oidc.key_set(document["jwks_uri"], fresh=True)
    except oidc.IdPUnavailable as exc:
        return {"ok": False, "error": str(exc)}
    pkce = "S256" in (document.get("code_challenge_methods_supported") or [])
    return {
        "ok": pkce and bool(jwks["keys"]),
        "error": "" if pkce else "The IdP does not announce PKCE (S256).",
        "issuer": document["issuer"],
        "authorization_endpoint": document["authorization_endpoint"],
        "token_endpoint": document["token_endpoint"],
        "jwks_uri": document["jwks_uri"],
        "keys": [
            {"kid": str(key.get("kid", "")), "kty": str(key.get("kty", "")), "alg": str(key.get("alg", ""))}
            for key in jwks["keys"]
            if isinstance(key, dict)
        ],
        "scopes_supported": [str(scope) for scope in document.get("scopes_supported") or []],
    }


def _enabled_provider() -> IdentityProvider:
    provider = provider_get()
    if provider is None or not provider.enabled:
        raise ServiceError(
            "This hospital does not sign in with single sign-on.",
            code="sso_not_configured",
            status=status.HTTP_404_NOT_FOUND,
        )
    return provider


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def signin_start(*, redirect_uri: str) -> tuple[str, str]:
    """A new sign-in: (the IdP's authorization URL, the state the browser must bring back in its cookie)."""
    provider = _enabled_provider()
    client = _client(provider)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    try:
        url = oidc.authorization_url(
            client, redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
        )
    except oidc.IdPUnavailable as exc:
        raise _unavailable(exc) from exc
    # Sign-ins never finished are worthless past their window: each start clears yesterday's (indexed).
    SignIn.objects.filter(created__lt=timezone.now() - timedelta(days=1)).delete()
    SignIn.objects.create(state_hash=_state_hash(state), nonce=nonce, code_verifier=verifier, redirect_uri=redirect_uri)
    return url, state


class SignInRefused(ServiceError):
    """A sign-in said no; `signin_finish` records it in the hospital's trail once its transaction is gone."""

    def __init__(self, message: str, *, code: str, reason: str, detail: dict) -> None:
        refused = code == "sso_refused"
        super().__init__(
            message, code=code, status=status.HTTP_403_FORBIDDEN if refused else status.HTTP_400_BAD_REQUEST
        )
        self.reason, self.detail = reason, detail


def _refuse(reason: str, message: str, *, detail: dict | None = None, code: str = "sso_refused") -> SignInRefused:
    return SignInRefused(message, code=code, reason=reason, detail=detail or {})


def _signin_consume(*, state: str, cookie_state: str | None) -> SignIn:
    """The sign-in this browser started, used up now (once, whatever the number of parallel callbacks)."""
    if not cookie_state or not hmac.compare_digest(cookie_state.encode(), state.encode()):
        raise _refuse("state_mismatch", "This sign-in was not started in this browser.", code="sso_state_invalid")
    oldest = timezone.now() - timedelta(seconds=settings.SSO_SIGN_IN_SECONDS)
    updated = SignIn.objects.filter(state_hash=_state_hash(state), used_at=None, created__gt=oldest).update(
        used_at=timezone.now()
    )
    if not updated:
        raise _refuse("state_unknown", "This sign-in is unknown, expired or already used.", code="sso_state_invalid")
    return SignIn.objects.get(state_hash=_state_hash(state))


def signin_finish(*, hospital, state: str, cookie_state: str | None, code: str, iss: str | None) -> User:
    """The callback: the code exchanged, the id_token checked, and the account it signs in as.

    A refusal is recorded in the hospital's trail (`sso_sign_in_refused`, with its reason).
    """
    try:
        return _signin_finish(hospital=hospital, state=state, cookie_state=cookie_state, code=code, iss=iss)
    except SignInRefused as exc:
        audit_record(
            action=AuditEvent.Action.SSO_SIGN_IN_REFUSED,
            target_type="sso.signin",
            detail={"reason": exc.reason, **exc.detail},
        )
        raise


def _signin_finish(*, hospital, state: str, cookie_state: str | None, code: str, iss: str | None) -> User:
    signin = _signin_consume(state=state, cookie_state=cookie_state)
    provider = _enabled_provider()
    client = _client(provider)
    # RFC 9207: an authorization response naming another issuer is a mix-up attack.
    if iss is not None and iss.rstrip("/") != provider.issuer:
        raise _refuse("issuer_mismatch", "The answer came from another identity provider.", code="sso_token_invalid")
    try:
        tokens = oidc.code_exchange(
            client, code=code, redirect_uri=signin.redirect_uri, code_verifier=signin.code_verifier
        )
        claims = oidc.id_token_validate(client, id_token=tokens["id_token"], nonce=signin.nonce)
        claims = oidc.claims_complete(client, claims=claims, access_token=tokens.get("access_token"))
    except oidc.IdPUnavailable as exc:
        raise _unavailable(exc) from exc
    except oidc.IdPRefused as exc:
        raise _refuse(
            "code_refused",
            "The identity provider refused the sign-in code.",
            detail={"error": str(exc)},
            code="sso_code_invalid",
        ) from exc
    except oidc.TokenInvalid as exc:
        raise _refuse(
            "id_token_invalid",
            "The identity provider's answer is not valid.",
            detail={"error": str(exc)},
            code="sso_token_invalid",
        ) from exc
    try:
        return identity_sign_in(hospital=hospital, provider=provider, claims=claims)
    except IntegrityError:
        # Two first sign-ins of one identity at once: the other one linked it; this one now finds the link.
        return identity_sign_in(hospital=hospital, provider=provider, claims=claims)


def identity_sign_in(*, hospital, provider: IdentityProvider, claims: dict) -> User:
    """The account of this hospital that a validated identity signs in as, linking it on its first sign-in.

    Linked: by (issuer, sub) alone. First sign-in: the IdP must vouch for the address (`email_verified`), its
    domain must be one the hospital allowed, and it matches an account of this hospital only (platform staff
    have no hospital, so never match); an unclaimed self-registration of that address is released first (its
    registrant proved nothing), a pending invitation is accepted, and with just-in-time sign-in an account
    is made with the default role.
    """
    subject = str(claims["sub"])
    who = {"sub": subject, "email": str(claims.get("email", ""))[:254]}
    with transaction.atomic():
        identity = Identity.objects.select_for_update().filter(issuer=provider.issuer, subject=subject).first()
        if identity is not None:
            user = User.objects.get(pk=identity.user_id)
            if not user.is_active or user.hospital_id != hospital.pk:
                raise _refuse("account_inactive", "This account is deactivated.", detail=who)
            identity.last_sign_in = timezone.now()
            identity.save(update_fields=["last_sign_in"])
            return user
    if claims.get("email_verified") is not True:
        raise _refuse("email_unverified", "The identity provider has not verified this email address.", detail=who)
    try:
        email = canonical_email(str(claims.get("email", "")))
    except InvalidEmail as exc:
        raise _refuse("email_invalid", "The identity provider gave no valid email address.", detail=who) from exc
    if email.partition("@")[2] not in provider.allowed_domains:
        raise _refuse("domain_refused", "This email domain may not sign in to this hospital.", detail=who)
    names = {
        "first_name": str(claims.get("given_name", ""))[:150],
        "last_name": str(claims.get("family_name", ""))[:150],
    }
    with transaction.atomic():
        registration_unclaimed_release(hospital=hospital, email=email, expired_only=False)
        account: User | None = User.objects.select_for_update().filter(email=email, hospital=hospital).first()
        how = "existing"
        if account is None or not account.is_active:
            account = invitation_accept_by_identity(hospital=hospital, email=email, **names)
            how = "invitation"
        if account is None:
            if User.objects.filter(email=email, hospital=hospital).exists():
                raise _refuse("account_inactive", "This account is deactivated.", detail=who)
            if provider.first_sign_in != IdentityProvider.FirstSignIn.JIT:
                raise _refuse("account_unknown", "This hospital has no account for this address.", detail=who)
            account = user_create_verified(hospital=hospital, email=email, password=None, **names)
            staff_member_create(user=account, role=provider.default_role, detail={"sso": provider.issuer})
            how = "just_in_time"
        user = account
        if Identity.objects.filter(issuer=provider.issuer, user=user).exists():
            raise _refuse("account_linked", "This account is linked to another identity of this IdP.", detail=who)
        Identity.objects.create(
            issuer=provider.issuer, subject=subject, user=user, email_at_link=email, last_sign_in=timezone.now()
        )
        audit_record(action=AuditEvent.Action.SSO_IDENTITY_LINKED, actor=user, target=user, detail={**who, "via": how})
        EmailAddress.objects.filter(user=user, email=email).update(verified=True)
    return user


def backchannel_logout(*, logout_token: str) -> int:
    """The IdP ended its user's session: the linked account's refresh tokens here are revoked (every login of
    it, not only the one that IdP session made); access tokens end within their lifetime. Returns how many
    were revoked. A token used once is refused again (its `jti`, remembered as long as it could be valid)."""
    provider = _enabled_provider()
    client = _client(provider)
    try:
        claims = oidc.logout_token_validate(client, logout_token=logout_token)
    except oidc.IdPUnavailable as exc:
        raise _unavailable(exc) from exc
    except oidc.TokenInvalid as exc:
        raise ServiceError("The logout token is not valid.", code="logout_token_invalid") from exc
    if not cache.add(f"sso:logout-jti:{provider.issuer}:{claims['jti']}", 1, 2 * settings.SSO_SIGN_IN_SECONDS):
        raise ServiceError("The logout token was already used.", code="logout_token_invalid")
    identity = Identity.objects.filter(issuer=provider.issuer, subject=str(claims["sub"])).first()
    if identity is None:
        return 0  # nobody here: nothing to end, and the IdP need not know
    revoked = refresh_tokens_revoke(user_id=identity.user_id)
    audit_record(
        action=AuditEvent.Action.LOGOUT,
        target_type="accounts.user",
        target_id=identity.user_id,
        detail={"via": "sso_backchannel", "sub": identity.subject, "refresh_tokens_revoked": revoked},
    )
    return revoked
