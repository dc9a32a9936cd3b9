"""Identity, in the public schema: one email is one account, linked to at most one hospital."""
from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # The whole address is case-insensitive here: Ann@X.org and ann@x.org
        # are one account (the database enforces it too).
        return (email or "").strip().lower()

    def get_by_natural_key(self, email: str) -> User:
        return self.get(email__iexact=email)

    def create_user(self, email: str, password: str | None = None, *, hospital=None,
                    first_name: str = "", last_name: str = "", is_active: bool = True) -> User:
        """A hospital's staff account. Without a password it cannot log in until one is set."""
        if hospital is None:
            raise ValueError("A hospital user needs a hospital; platform staff are made with create_superuser.")
        if hospital.is_platform:
            raise ValueError("Users belong to a hospital, not to the platform's public schema.")
        return self._create(email, password, hospital=hospital, first_name=first_name,
                            last_name=last_name, is_active=is_active)

    def create_superuser(self, email: str, password: str | None = None, *,
                         first_name: str = "", last_name: str = "") -> User:
        """Platform staff: no hospital, full rights in the platform's admin."""
        return self._create(email, password, hospital=None, first_name=first_name, last_name=last_name,
                            is_staff=True, is_superuser=True)

    def _create(self, email: str, password: str | None, **fields) -> User:
        email = self.normalize_email(email)
        if not email:
            raise ValueError("An email address is required.")
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ValueError(f"{email!r} is not a valid email address.") from exc
        user = self.model(email=email, **fields)
        user.set_password(password)  # None gives an unusable password
        user.full_clean(exclude=["password"], validate_unique=False)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField("email address", max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    hospital = models.ForeignKey(
        "tenants.Hospital", null=True, blank=True, on_delete=models.PROTECT, related_name="users",
        help_text="The hospital this account belongs to; empty for platform staff.",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Platform staff: may use the platform domain.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            # Platform staff belong to no hospital; hospital staff are never platform staff.
            models.CheckConstraint(
                condition=(Q(hospital__isnull=True, is_staff=True)
                           | Q(hospital__isnull=False, is_staff=False, is_superuser=False)),
                name="accounts_user_staff_xor_hospital",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = type(self).objects.normalize_email(self.email)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_platform_staff(self) -> bool:
        return self.hospital_id is None
