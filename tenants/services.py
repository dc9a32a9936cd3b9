"""Hospital (tenant) operations, called alike by the API, the admin and management commands."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django_tenants.utils import get_public_schema_name, tenant_context

from accounts.services import user_create_verified
from audit.models import AuditEvent
from audit.services import audit_record
from core.api import ServiceError
from core.tasks import publish_after_commit
from emails.models import Email
from staff.models import StaffMember
from staff.services import invitation_create, staff_member_create
from tenants.models import RESERVED_SLUGS, SLUG_MAX_LENGTH, Domain, Hospital, schema_name_for_slug, slug_validator
from tenants.provisioning import spare_schema_claim
from tenants.routing import hospital_routing_forget

User = get_user_model()


def hospital_host(slug: str) -> str:
    return f"{slug}.{settings.BASE_DOMAIN}"


def hospital_slug_validate(slug: str) -> str:
    slug = (slug or "").strip().lower()
    if not slug:
        raise ServiceError("A slug is required.", code="slug_invalid", field="slug")
    if len(slug) > SLUG_MAX_LENGTH:
        raise ServiceError(f"A slug has at most {SLUG_MAX_LENGTH} characters.", code="slug_invalid", field="slug")
    try:
        slug_validator(slug)
    except ValidationError as exc:
        raise ServiceError(exc.messages[0], code="slug_invalid", field="slug") from exc
    if slug in RESERVED_SLUGS:
        raise ServiceError(f"'{slug}' is reserved.", code="slug_reserved", field="slug")
    return slug


def platform_ensure() -> Hospital:
    """The public schema's row and its domain (BASE_DOMAIN); idempotent."""
    platform, _ = Hospital.objects.get_or_create(
        schema_name=get_public_schema_name(),
        defaults={"name": "Platform", "slug": "public"},
    )
    Domain.objects.update_or_create(domain=settings.BASE_DOMAIN, defaults={"tenant": platform, "is_primary": True})
    return platform


def hospital_create(
    *,
    name: str,
    slug: str,
    admin_email: str,
    admin_first_name: str = "",
    admin_last_name: str = "",
    admin_password: str | None = None,
) -> Hospital:
    """Creates a hospital: its schema (migrated), its domain <slug>.BASE_DOMAIN and its admin account.

    All or nothing: a taken slug or admin email fails with a ServiceError and
    leaves no schema, row or account behind. Without a password (the normal
    case) the admin is invited by email and chooses one on accepting; with
    one (local demo data) the admin can log in at once.
    """
    slug = hospital_slug_validate(slug)
    name = (name or "").strip()
    if not name:
        raise ServiceError("A name is required.", code="name_required", field="name")
    # A new hospital is a new realm: no address can be taken in it yet, whatever other hospitals hold.
    try:
        admin_email = User.objects.normalize_email(admin_email)
    except ValueError as exc:
        raise ServiceError(str(exc), code="email_invalid", field="admin_email") from exc
    if Hospital.objects.filter(slug=slug).exists():
        raise ServiceError(f"A hospital with slug '{slug}' already exists.", code="slug_taken", field="slug")

    try:
        with transaction.atomic():
            hospital = Hospital(name=name, slug=slug, schema_name=schema_name_for_slug(slug))
            # A pre-migrated spare renamed to the hospital's schema, if the pool has one:
            # save() then finds the schema in place and runs no migrations.
            spare_schema_claim(schema_name=hospital.schema_name)
            hospital.save(verbosity=0)  # else CREATE SCHEMA + migrations, inside this transaction
            Domain.objects.create(domain=hospital_host(slug), tenant=hospital, is_primary=True)
            with tenant_context(hospital):
                if admin_password is None:
                    invitation_create(
                        hospital=hospital,
                        email=admin_email,
                        role=StaffMember.Role.HOSPITAL_ADMIN,
                        first_name=admin_first_name,
                        last_name=admin_last_name,
                    )
                else:
                    admin = user_create_verified(
                        hospital=hospital,
                        email=admin_email,
                        password=admin_password,
                        first_name=admin_first_name,
                        last_name=admin_last_name,
                    )
                    staff_member_create(user=admin, role=StaffMember.Role.HOSPITAL_ADMIN)
    except (IntegrityError, DatabaseError) as exc:
        # Lost a race for the same slug against a concurrent creation.
        if Hospital.objects.filter(slug=slug).exists():
            raise ServiceError(
                f"A hospital with slug '{slug}' already exists.", code="slug_taken", field="slug"
            ) from exc
        raise
    audit_record(
        action=AuditEvent.Action.HOSPITAL_ONBOARDED, target=hospital, detail={"slug": slug, "admin_email": admin_email}
    )
    publish_after_commit("tenants.tasks.spare_pool_refill_task")  # a worker tops the pool up again
    return hospital


SESSION_LIMITS = ("session_idle_minutes", "session_max_minutes")


def hospital_update(*, hospital: Hospital, name: str | None = None, **session_limits: int | None) -> Hospital:
    """Renames a hospital (its slug, host and schema stay: links already sent keep working) and sets its
    session limits (accounts.LoginSession: None for none; they apply from each session's next login or refresh)."""
    changed = []
    if name is not None:
        name = name.strip()
        if not name:
            raise ServiceError("A name is required.", code="name_required", field="name")
        hospital.name = name
        changed.append("name")
    for field, value in session_limits.items():
        if field not in SESSION_LIMITS:
            raise TypeError(field)
        setattr(hospital, field, value)
        changed.append(field)
    if changed:
        hospital.save(update_fields=changed)
    return hospital


def hospital_suspend(*, hospital: Hospital) -> Hospital:
    """Its subdomain answers 403 to everything, tokens included, until reactivated. Nothing is deleted."""
    hospital.is_active = False
    hospital.save(update_fields=["is_active"])
    hospital_routing_forget(hospital=hospital)  # other processes see it in band (tenants/routing.py)
    audit_record(action=AuditEvent.Action.HOSPITAL_SUSPENDED, target=hospital)
    return hospital


def hospital_reactivate(*, hospital: Hospital) -> Hospital:
    hospital.is_active = True
    hospital.save(update_fields=["is_active"])
    hospital_routing_forget(hospital=hospital)
    audit_record(action=AuditEvent.Action.HOSPITAL_REACTIVATED, target=hospital)
    return hospital


def hospital_purge(*, hospital: Hospital) -> None:
    """Deletes a suspended hospital for good: its schema, its accounts, its domains and its emails."""
    if hospital.is_platform:
        raise ServiceError("The platform cannot be purged.", code="purge_refused")
    if hospital.is_active:
        raise ServiceError("Suspend the hospital before purging it.", code="purge_refused")
    with transaction.atomic():
        with tenant_context(hospital):
            # Empty the hospital's tables first, so that deleting its accounts
            # meets no rows of theirs (guardian, staff, records) still pointing at them.
            quote = connection.ops.quote_name
            tables = [
                f"{quote(hospital.schema_name)}.{quote(model._meta.db_table)}"
                for config in apps.get_app_configs()
                if config.name in settings.TENANT_APPS
                for model in config.get_models()
            ]
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
            User.objects.filter(hospital=hospital).delete()  # their email addresses and tokens cascade
        Email.objects.filter(hospital=hospital).delete()
        hospital.delete(force_drop=True)  # its domains cascade; DROP SCHEMA ... CASCADE
    hospital_routing_forget(hospital=hospital)
