"""Onboarding from the pool of spare schemas: claimed by renaming, refilled, kept in step with migrations.

The suite's Celery worker refills the pool after every onboarding. Tests that
look at the pool hold its lock (`spare_pool_lock`), so that no refill changes
it under them; a refill they ask for themselves takes the lock re-entrantly.
"""

import threading
import uuid

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command, get_commands
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.transaction import TransactionManagementError
from django_tenants.utils import schema_context, tenant_context

from hospitals.models import StaffMember
from tenants.management.commands.migrate_schemas import Command as MigrateSchemasCommand
from tenants.models import Domain, Hospital, SpareSchema, schema_name_for_slug
from tenants.provisioning import (
    migration_fingerprint,
    spare_pool_lock,
    spare_pool_refill,
    spare_schema_claim,
    spare_schema_create,
    spare_schema_drop,
)
from tenants.services import hospital_create, hospital_host
from tests.processes import READY_TIMEOUT
from tests.support import PASSWORD, unique_email


@pytest.fixture(autouse=True)
def refilling_worker(celery_worker):
    """Every onboarding publishes a refill: the suite's Celery worker takes it, as in production."""


def unique_slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def namespace_oid(schema_name: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema_name])
        row = cursor.fetchone()
    return row[0] if row else None


def tables(schema_name: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema_name])
        return {row[0] for row in cursor.fetchall()}


def tenant_tables() -> set[str]:
    """Every table of the tenant apps' models, and the schema's own django_migrations."""
    labels = {apps.get_app_config(name.rsplit(".", 1)[-1]).label for name in settings.TENANT_APPS}
    return {"django_migrations"} | {
        model._meta.db_table
        for label in labels
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
    }


def migration_rows(schema_name: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema_name}".django_migrations')
        return set(cursor.fetchall())


def unapplied(schema_name: str) -> list:
    """What migrate would still apply to the schema (Django's own plan, read from its django_migrations)."""
    with schema_context(schema_name):
        connection.set_schema(schema_name, include_public=False)
        executor = MigrationExecutor(connection)
        return executor.migration_plan(executor.loader.graph.leaf_nodes())


def current_spares() -> dict[str, int]:
    """Claimable spares: schema name -> namespace oid."""
    names = SpareSchema.objects.filter(fingerprint=migration_fingerprint()).values_list("schema_name", flat=True)
    return {name: namespace_oid(name) for name in names}


def drain_pool() -> None:
    for name in list(SpareSchema.objects.values_list("schema_name", flat=True)):
        spare_schema_drop(schema_name=name)


def assert_ready_hospital(hospital: Hospital, admin_email: str, api_for) -> None:
    """The schema is fully migrated, the admin has their role in it, and logs in on the subdomain."""
    assert tables(hospital.schema_name) == tenant_tables()
    assert ("hospitals", "0001_initial") in migration_rows(hospital.schema_name)
    assert unapplied(hospital.schema_name) == []
    with tenant_context(hospital):
        assert StaffMember.objects.get(user__email=admin_email).role == StaffMember.Role.HOSPITAL_ADMIN
    assert api_for(hospital).login(admin_email).json()["user"]["hospital"] == hospital.slug


def test_onboarding_renames_a_spare_schema(api_for):
    slug, email = unique_slug("spare"), unique_email("admin")
    with spare_pool_lock():
        spare_pool_refill(size=2)
        spares = current_spares()
        assert len(spares) >= 2

        hospital = hospital_create(name="Spare General", slug=slug, admin_email=email, admin_password=PASSWORD)

        claimed = [name for name in spares if namespace_oid(name) is None]
        assert len(claimed) == 1, claimed
        assert hospital.schema_name == schema_name_for_slug(slug)
        assert namespace_oid(hospital.schema_name) == spares[claimed[0]]  # the same schema, renamed
        assert not SpareSchema.objects.filter(schema_name=claimed[0]).exists()
        assert set(current_spares()) == set(spares) - set(claimed)
    assert_ready_hospital(hospital, email, api_for)


def test_concurrent_onboardings_take_different_spares_without_waiting():
    """A claim in flight keeps its spare locked; another onboarding skips it rather than waiting."""
    held_name = schema_name_for_slug(unique_slug("held"))
    claimed, release, outcome = threading.Event(), threading.Event(), {}

    def claim_and_hold() -> None:
        try:
            with transaction.atomic():
                outcome["claimed"] = spare_schema_claim(schema_name=held_name)
                claimed.set()
                release.wait(timeout=READY_TIMEOUT)  # a limit only against a hung test
                transaction.set_rollback(True)  # gives the spare back
        finally:
            claimed.set()
            connection.close()

    with spare_pool_lock():
        spare_pool_refill(size=2)
        spares = current_spares()
        holder = threading.Thread(target=claim_and_hold)
        holder.start()
        try:
            assert claimed.wait(timeout=READY_TIMEOUT) and outcome["claimed"]
            hospital = hospital_create(name="Concurrent", slug=unique_slug("concurrent"), admin_email=unique_email())
            # Did not wait for the other transaction: it still holds its claim, until told to let go.
            assert holder.is_alive() and not release.is_set()
        finally:
            release.set()
            holder.join()
        assert namespace_oid(hospital.schema_name) in spares.values()  # a spare, not the default path
        assert namespace_oid(held_name) is None  # the held one was given back under its own name...
        assert sum(namespace_oid(name) is not None for name in spares) == len(spares) - 1  # ...and only one is gone


def test_empty_pool_falls_back_to_creating_and_migrating(api_for):
    slug, email = unique_slug("nopool"), unique_email("admin")
    with spare_pool_lock():
        drain_pool()
        hospital = hospital_create(name="No Pool General", slug=slug, admin_email=email, admin_password=PASSWORD)
        assert not SpareSchema.objects.exists()
    assert_ready_hospital(hospital, email, api_for)


def test_stale_spares_are_never_claimed_and_refill_brings_them_up_to_date():
    with spare_pool_lock():
        drain_pool()
        # Stamped before a migration this code has: the pool must not hand it out.
        behind = spare_schema_create()
        SpareSchema.objects.filter(pk=behind.pk).update(fingerprint="an-older-migration-state")
        # Migrated by code that has a migration this code does not know: it cannot be brought back.
        alien = spare_schema_create()
        SpareSchema.objects.filter(pk=alien.pk).update(fingerprint="another-branch")
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{alien.schema_name}".django_migrations (app, name, applied) '
                "VALUES ('hospitals', '9999_from_another_branch', now())"
            )
        oids = {spare.schema_name: namespace_oid(spare.schema_name) for spare in (behind, alien)}

        hospital = hospital_create(name="Stale Pool", slug=unique_slug("stale"), admin_email=unique_email())
        assert {name: namespace_oid(name) for name in oids} == oids  # both still there, under their own names
        assert namespace_oid(hospital.schema_name) not in oids.values()

        assert spare_pool_refill(size=2) == 1  # `behind` migrated, `alien` dropped, one new one
        behind.refresh_from_db()
        assert behind.fingerprint == migration_fingerprint()
        assert unapplied(behind.schema_name) == []
        assert namespace_oid(alien.schema_name) is None
        assert not SpareSchema.objects.filter(pk=alien.pk).exists()
        assert len(current_spares()) == 2


@pytest.mark.parametrize("executor", ["standard", "multiprocessing"])
def test_migrate_schemas_brings_spares_up_to_date(executor):
    with spare_pool_lock():
        spare = spare_schema_create()
        # As after a deploy that adds a hospitals migration: the spare lacks it,
        # and its stamp is that of the code before.
        call_command(
            "migrate_schemas", "hospitals", "zero", schema_name=spare.schema_name, interactive=False, verbosity=0
        )
        SpareSchema.objects.filter(pk=spare.pk).update(fingerprint="before-the-new-migration")
        assert "hospitals_staffmember" not in tables(spare.schema_name)
        assert not {app for app, _ in migration_rows(spare.schema_name)} & {"hospitals"}

        call_command(MigrateSchemasCommand(), executor=executor, interactive=False, verbosity=0)

        spare.refresh_from_db()
        assert tables(spare.schema_name) == tenant_tables()
        assert ("hospitals", "0001_initial") in migration_rows(spare.schema_name)
        assert unapplied(spare.schema_name) == []
        assert spare.fingerprint == migration_fingerprint()


def test_migrate_schemas_is_the_command_that_migrates_spares():
    """`manage.py migrate_schemas` must be tenants' command, not django-tenants' own.

    Django takes a command from the first app in INSTALLED_APPS that has one.
    """
    assert get_commands()["migrate_schemas"] == "tenants", (
        "manage.py migrate_schemas is django-tenants' command, which leaves spare schemas behind: "
        "list 'tenants' before 'django_tenants' in SHARED_APPS"
    )


def test_failed_onboarding_puts_the_claimed_spare_back(hospital_a):
    """The claim is part of the onboarding transaction: a failure after it renames nothing."""
    slug = unique_slug("clash")
    # The host is someone else's already, so creating the domain fails after the schema was claimed.
    taken = Domain.objects.create(domain=hospital_host(slug), tenant=hospital_a, is_primary=False)
    try:
        with spare_pool_lock():
            spare_pool_refill(size=1)
            before = dict(SpareSchema.objects.values_list("schema_name", "fingerprint"))
            oids = {name: namespace_oid(name) for name in before}
            assert current_spares()

            with pytest.raises(IntegrityError):
                hospital_create(name="Clash", slug=slug, admin_email=unique_email())

            assert dict(SpareSchema.objects.values_list("schema_name", "fingerprint")) == before
            assert {name: namespace_oid(name) for name in before} == oids
            assert namespace_oid(schema_name_for_slug(slug)) is None
            assert not Hospital.objects.filter(slug=slug).exists()
    finally:
        taken.delete()


def test_claim_runs_only_inside_a_transaction():
    with pytest.raises(TransactionManagementError):
        spare_schema_claim(schema_name=schema_name_for_slug(unique_slug("loose")))


def test_refill_command_fills_the_pool_to_the_size_asked(capsys):
    with spare_pool_lock():
        have = len(current_spares())
        call_command("refill_spare_schemas", "--size", str(have + 1))
        assert "Created 1 spare schema(s)." in capsys.readouterr().out
        assert len(current_spares()) == have + 1
        call_command("refill_spare_schemas", "--size", str(have + 1))
        assert "Created 0 spare schema(s)." in capsys.readouterr().out
