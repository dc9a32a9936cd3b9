"""The routing table of the platform, in the public schema: which schema serves which host."""

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper
from django_tenants.models import DomainMixin, TenantMixin
from django_tenants.utils import get_public_schema_name

# A DNS label (so <slug>.BASE_DOMAIN is a valid host), short enough that the
# schema name "h_<slug>" fits PostgreSQL's 63-character identifiers.
SLUG_MAX_LENGTH = 50
slug_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
    "Use lowercase letters, digits and hyphens; start and end with a letter or digit.",
)
RESERVED_SLUGS = frozenset(
    {
        "www",
        "admin",
        "api",
        "public",
        "platform",
        "static",
        "media",
        "mail",
        "smtp",
        "ftp",
        "app",
        "auth",
        "login",
        "status",
        "help",
        "support",
        "docs",
        "test",
        "localhost",
    }
)


def schema_name_for_slug(slug: str) -> str:
    # The prefix keeps hospital schemas clear of "public", "pg_*" and
    # "information_schema"; slugs carry no "_", so the mapping is one-to-one.
    return "h_" + slug.replace("-", "_")


class Hospital(TenantMixin):
    """A hospital, served from its own PostgreSQL schema. One row (schema "public") is the platform itself."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=SLUG_MAX_LENGTH, unique=True, validators=[slug_validator])
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    # Sessions (accounts.LoginSession) end after this many minutes without a refresh (a shared ward
    # workstation), and at the latest this many minutes after their login. Empty: no such limit.
    session_idle_minutes = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    session_max_minutes = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    # The migration state its schema is at: tenants.migration_state.migration_fingerprint()
    # of the code that last migrated it fully, "" when unknown. migrate_schemas skips a
    # hospital only when this is the current state (tenants/management/commands/migrate_schemas.py).
    migration_state = models.CharField(max_length=64, blank=True, default="", editable=False)

    auto_create_schema = True
    auto_drop_schema = False  # a hospital's records are never dropped by a row delete

    class Meta:
        ordering = ["name"]
        constraints = [
            # django-tenants refuses a new schema name that differs from a tenant's only in case with an
            # `iexact` query (TenantMixin._check_schema_name_is_unique): without this index that query reads
            # every hospital's row at each onboarding (0.24 -> 0.51 ms from 1 to 1,000 hospitals, README
            # "1,000 hospitals"); with it, one index probe. It also holds the rule against two concurrent
            # onboardings, which the query alone cannot.
            models.UniqueConstraint(Upper("schema_name"), name="tenants_hospital_schema_name_upper_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_platform(self) -> bool:
        return self.schema_name == get_public_schema_name()


class Domain(DomainMixin):
    """A host name that routes to a hospital's schema (or to the platform's)."""

    def __str__(self) -> str:
        return self.domain


class SpareSchema(models.Model):
    """A schema created and migrated ahead of time, which onboarding renames to a new hospital's schema.

    Rows live in the public schema; `tenants.provisioning` creates, claims and refills them.
    """

    schema_name = models.CharField(max_length=63, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    # The migration state the schema is at (tenants.provisioning.migration_fingerprint()
    # when it was last migrated); only spares at the current state are claimed.
    fingerprint = models.CharField(max_length=64, db_index=True)

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return self.schema_name
