"""A hospital's OpenID Connect identity provider, the identities linked to its accounts, and sign-ins under way.

All three live in the hospital's schema (ARCHITECTURE.md): another hospital's schema has no row of them, so
nothing of one hospital's configuration or identities can be read, matched or linked from another.
"""

from django.conf import settings
from django.db import models

from staff.models import StaffMember


class IdentityProvider(models.Model):
    """The hospital's IdP (at most one: `singleton` is always true)."""

    class FirstSignIn(models.TextChoices):
        EXISTING = "existing", "Existing or invited accounts only"
        JIT = "jit", "Create the account just in time, with the default role"

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    issuer = models.URLField(
        max_length=500, help_text="Its discovery document is <issuer>/.well-known/openid-configuration."
    )
    client_id = models.CharField(max_length=255)
    # Fernet ciphertext (sso/crypto.py); the API never returns it.
    client_secret_encrypted = models.TextField()
    scopes = models.CharField(max_length=500, default="openid email profile")
    allowed_domains = models.JSONField(default=list, help_text="Email domains this IdP may sign in (canonical form).")
    first_sign_in = models.CharField(max_length=16, choices=FirstSignIn.choices, default=FirstSignIn.EXISTING)
    default_role = models.CharField(max_length=32, choices=StaffMember.Role.choices, default=StaffMember.Role.NURSE)
    enabled = models.BooleanField(default=True)
    # Required: no password login, registration, reset or password invitation here, except for these
    # accounts (canonical emails), which keep their password (and MFA) for when the IdP is down.
    sso_required = models.BooleanField(default=False)
    break_glass_emails = models.JSONField(default=list, blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.issuer


class Identity(models.Model):
    """An IdP account (issuer + its stable `sub`) linked to an account of this hospital."""

    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )  # public row: core/crossschema.py
    email_at_link = models.EmailField(max_length=254)
    created = models.DateTimeField(auto_now_add=True)
    last_sign_in = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_issuer_subject"),
            models.UniqueConstraint(fields=["issuer", "user"], name="sso_identity_issuer_user"),
        ]


class SignIn(models.Model):
    """One sign-in under way: what the callback must find again. Used once (`used_at`), then worthless."""

    state_hash = models.CharField(max_length=64, unique=True)  # SHA-256 of the state (also in the browser's cookie)
    nonce = models.CharField(max_length=64)
    code_verifier = models.CharField(max_length=128)
    redirect_uri = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
