"""Reads of a hospital's single sign-on, in its schema."""

from __future__ import annotations

from sso.models import Identity, IdentityProvider


def sso_status() -> dict:
    """What the platform may know of the current hospital's SSO: whether and how, never the client or secret."""
    provider = IdentityProvider.objects.first()
    if provider is None:
        return {"configured": False, "enabled": False, "issuer": "", "sso_required": False, "linked_identities": 0}
    return {
        "configured": True,
        "enabled": provider.enabled,
        "issuer": provider.issuer,
        "sso_required": provider.sso_required,
        "linked_identities": Identity.objects.filter(issuer=provider.issuer).count(),
    }
