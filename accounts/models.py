"""Identity, in the public schema. Each hospital is a realm: an email is unique within its hospital and among
platform staff."""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.addresses import canonical_email, canonical_email_or_none


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """The canonical form (accounts/addresses.py); raises InvalidEmail (a ValueError) if there is none."""
        return canonical_email(email)

    def get_by_natural_key(self, email: str | None) -> User:
        # An email alone names an account only among platform staff (createsuperuser, the admin);
        # a hospital's accounts are found with their hospital (accounts.security.backends).
        return self.get(email=canonical_email_or_none(email), hospital=None)

    def create_user(
        self,
        email: str,
        password: str | None = None,
        *,
        hospital=None,
        first_name: str = "",
        last_name: str = "",
        is_active: bool = True,
    ) -> User:
        """A hospital's staff account. Without a password it cannot log in until one is set."""
        if hospital is None:
            raise ValueError("A hospital user needs a hospital; platform staff are made with create_superuser.")
        if hospital.is_platform:
            raise ValueError("Users belong to a hospital, not to the platform's public schema.")
        return self._create(
            email, password, hospital=hospital, first_name=first_name, last_name=last_name, is_active=is_active
        )

    def create_superuser(
        self, email: str, password: str | None = None, *, first_name: str = "", last_name: str = ""
    ) -> User:
        """Platform staff: no hospital, full rights in the platform's admin.

        Made by an operator (`createsuperuser` calls this too), so the address
        counts as verified and the account can log in to the API at once.
        """
        from allauth.account.models import EmailAddress

        with transaction.atomic(using=self._db):
            user = self._create(
                email,
                password,
                hospital=None,
                first_name=first_name,
                last_name=last_name,
                is_staff=True,
                is_superuser=True,
            )
            EmailAddress.objects.using(self._db).create(user=user, email=user.email, primary=True, verified=True)
        return user

    def _create(self, email: str, password: str | None, **fields) -> User:
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)  # None gives an unusable password
        user.full_clean(exclude=["password"], validate_unique=False)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    # Canonical (accounts/addresses.py); unique per hospital and among platform staff (Meta).
    email = models.EmailField("email address", max_length=254)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    hospital = models.ForeignKey(
        "tenants.Hospital",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
        help_text="The hospital this account belongs to; empty for platform staff.",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Platform staff: may use the platform domain.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            # A hospital is a realm: the same address at two hospitals is two accounts.
            models.UniqueConstraint(
                fields=["hospital", "email"],
                condition=Q(hospital__isnull=False),
                name="accounts_user_email_unique_per_hospital",
                violation_error_message="This email address has an account at this hospital.",
            ),
            models.UniqueConstraint(
                fields=["email"],
                condition=Q(hospital__isnull=True),
                name="accounts_user_email_unique_among_platform_staff",
                violation_error_message="This email address belongs to platform staff.",
            ),
            # Only canonical forms are stored (plain ASCII, lower case), whatever path wrote the row.
            models.CheckConstraint(
                condition=Q(email=Lower("email")) & Q(email__regex=r"^[!-~]+$"), name="accounts_user_email_canonical"
            ),
            # Platform staff belong to no hospital; hospital staff are never platform staff.
            models.CheckConstraint(
                condition=(
                    Q(hospital__isnull=True, is_staff=True)
                    | Q(hospital__isnull=False, is_staff=False, is_superuser=False)
                ),
                name="accounts_user_staff_xor_hospital",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        try:
            self.email = canonical_email(self.email)
        except ValueError as exc:
            raise ValidationError({"email": str(exc)}) from exc

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_platform_staff(self) -> bool:
        return self.hospital_id is None


class LoginAttemptCounter(models.Model):
    """Login attempts spent from one budget until `expires_at` (accounts/security/attempts.py)."""

    key = models.CharField(max_length=300, primary_key=True)
    count = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class RefreshTokenFamily(models.Model):
    """The login (token family) a refresh token descends from, written when the token is issued.

    Revoking a family is then one query, instead of decoding every outstanding
    token of the user; the row goes with its token (simplejwt's flushexpiredtokens).
    """

    outstanding = models.OneToOneField(
        "token_blacklist.OutstandingToken", on_delete=models.CASCADE, primary_key=True, related_name="family"
    )
    family = models.CharField(max_length=32, db_index=True)
    # Rotation (accounts/security/tokens.py): the token this one was exchanged for, and when. Within
    # REFRESH_TOKEN_REUSE_INTERVAL of that, this token may be presented once more (`reuse_granted`) and
    # answered with its successor: two tabs refreshing at once are a race, not a theft.
    successor = models.OneToOneField(
        "token_blacklist.OutstandingToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="predecessor"
    )
    rotated_at = models.DateTimeField(null=True, blank=True)
    reuse_granted = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "refresh token families"

    def __str__(self) -> str:
        return f"{self.outstanding_id}: {self.family}"


class Authenticator(models.Model):
    """A second factor of one account (accounts/mfa/): public, beside the user it belongs to, like allauth's
    `EmailAddress`. A copy in each hospital schema would point at the public user from 300 places, and the
    two-step login reads it before any hospital-specific table matters."""

    class Type(models.TextChoices):
        TOTP = "totp", "Authenticator app (TOTP)"
        RECOVERY_CODES = "recovery_codes", "Recovery codes"
        WEBAUTHN = "webauthn", "Passkey or security key (WebAuthn)"

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="authenticators")
    type = models.CharField(max_length=20, choices=Type.choices)
    # TOTP: the RFC 6238 secret, encrypted (accounts/mfa/crypto.py); never stored in the clear.
    secret = models.TextField(blank=True)
    # TOTP: the last time step accepted; a code of that step or an earlier one is refused (no replay).
    last_used_step = models.BigIntegerField(null=True, blank=True)
    # Recovery codes: a keyed hash of each unused code; a used one is removed.
    code_hashes = models.JSONField(default=list, blank=True)
    # WebAuthn (several per account): what the owner called it, the credential's id (base64url) and its
    # attested data (id and public key, fido2's AttestedCredentialData bytes), and the authenticator's
    # signature counter, which must grow where the authenticator keeps one (a step back means a clone).
    name = models.CharField(max_length=100, blank=True)
    credential_id = models.CharField(max_length=1400, null=True, blank=True)
    credential = models.BinaryField(null=True, blank=True)
    sign_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "type"],
                condition=~models.Q(type="webauthn"),
                name="accounts_authenticator_one_per_type",
            ),
            # Per account, not across accounts: a credential id is no secret, and another account's claim to it
            # must not block its owner's registration.
            models.UniqueConstraint(fields=["user", "credential_id"], name="accounts_authenticator_credential"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.type}"


class MfaChallenge(models.Model):
    """The second step of a login, between a correct password and its code (`mfa_token`).

    Only a SHA-256 of the token is stored. Bound to the account and the hospital the password was given at,
    short-lived (`MFA_TOKEN_LIFETIME`), and used once: a successful second step sets `used_at`.
    """

    token_hash = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    hospital_id = models.BigIntegerField(null=True, blank=True)  # None: the platform domain
    client = models.CharField(max_length=16)  # the login's `client`: where the tokens will travel
    # "login": the second step of a login (`/accounts/login/mfa/`); "step_up": a passkey given again while
    # logged in (`/accounts/mfa/reauthenticate/`). One is never accepted for the other.
    purpose = models.CharField(max_length=8, default="login")
    # The WebAuthn challenge offered with it (fido2's state), for an account with passkeys; else null.
    webauthn_state = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class LoginSession(models.Model):
    """One login, as its owner and hospital see it: a refresh token family (accounts/security/tokens.py).

    Every token of the family, refresh and access, carries its id (the `family` claim). The row is the one
    place that says whether they may still be used: the authenticated request reads it in the same statement
    as the user (accounts/authentication.py), so an ended session's access tokens are refused at once.
    """

    id = models.CharField(max_length=32, primary_key=True)  # the `family` claim
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="login_sessions")
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(default=timezone.now)  # the login or the last refresh
    client_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    # The earliest of: the refresh token's expiry, the idle timeout after `last_used` and the absolute
    # lifetime after `created` (the hospital's settings at the last use). Moved on at every refresh.
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user"], condition=Q(ended_at__isnull=True), name="accounts_loginsession_live"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.user_id})"
