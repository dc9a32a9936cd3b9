"""migrate_schemas skips the schemas recorded at the current migration state, and only those.

Each test moves its own hospitals one migration back (the newest tenant migration nothing depends on) with
django-tenants' own rollback, then says what their records claim, runs our
migrate_schemas over every tenant, and looks at which schemas got it back.
"""

import functools
import io
import re
import uuid
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django_tenants.signals import schema_migrated
from django_tenants.utils import schema_context

from tenants.management.commands.migrate_schemas import Command as MigrateSchemasCommand
from tenants.migration_state import STALE, migration_fingerprint
from tenants.models import Hospital, SpareSchema
from tenants.provisioning import spare_pool_lock, spare_pool_refill
from tenants.services import hospital_create
from tests.support import unique_email


@functools.cache
def one_behind() -> set[tuple[str, str]]:
    """What moving back to the parent unapplies: the migration and whatever depends on it."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return set(graph.backwards_plan(newest_leaf_and_its_parent()[0]))


@functools.cache
def newest_leaf_and_its_parent() -> tuple[tuple[str, str], tuple[str, str]]:
    """The newest migration of a tenant app that changes the schema (creates a table or adds a column), and
    the one before it in its app: moving a schema back to the parent unapplies it (and what depends on it,
    `one_behind()`), whatever migrations the apps gain later. Walks back from each app's leaf past
    migrations that only alter fields."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    for app in ("hospitals", "staff", "audit"):
        for leaf in graph.leaf_nodes(app):
            node = graph.node_map[leaf]
            while parents := [parent for parent in node.parents if parent.key[0] == app]:
                if conflicting_object_sql(node.key, "x"):
                    return node.key, parents[0].key
                node = parents[0]
    raise AssertionError("no tenant app has a migration that creates a table or adds a column")


def conflicting_object_sql(migration: tuple[str, str], schema_name: str) -> tuple[str, str] | None:
    """SQL that creates, in `schema_name`, the first table or column `migration` creates (so the migration
    fails on it), and the SQL that removes it again."""
    out = io.StringIO()
    with schema_context(schema_name):  # a tenant app's migration is a no-op in public
        call_command("sqlmigrate", *migration, stdout=out)
    sql = out.getvalue()
    table = re.search(r'CREATE TABLE "(\w+)"', sql)
    if table:
        name = f'"{schema_name}"."{table.group(1)}"'
        return f"CREATE TABLE {name} (id integer)", f"DROP TABLE {name}"
    column = re.search(r'ALTER TABLE "(\w+)" ADD COLUMN "(\w+)"', sql)
    if column:
        name = f'"{schema_name}"."{column.group(1)}"'
        return (
            f'ALTER TABLE {name} ADD COLUMN "{column.group(2)}" integer',
            f'ALTER TABLE {name} DROP COLUMN "{column.group(2)}"',
        )
    return None


@pytest.fixture(autouse=True)
def refilling_worker(celery_worker):
    """Every onboarding publishes a refill: the suite's Celery worker takes it, as in production."""


def new_hospital(name: str) -> Hospital:
    slug = f"ms-{uuid.uuid4().hex[:8]}"
    return hospital_create(name=f"{name} {slug}", slug=slug, admin_email=unique_email())


def record(hospital: Hospital) -> str:
    return Hospital.objects.values_list("migration_state", flat=True).get(pk=hospital.pk)


def set_record(hospital: Hospital, state: str) -> None:
    Hospital.objects.filter(pk=hospital.pk).update(migration_state=state)


def one_migration_behind(hospital: Hospital) -> None:
    newest, previous = newest_leaf_and_its_parent()
    call_command("migrate_schemas", *previous, schema_name=hospital.schema_name, interactive=False, verbosity=0)
    assert set(unapplied(hospital.schema_name)) == one_behind()


def unapplied(schema_name: str) -> list[tuple[str, str]]:
    with schema_context(schema_name):
        connection.set_schema(schema_name, include_public=False)
        executor = MigrationExecutor(connection)
        return [(m.app_label, m.name) for m, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())]


@contextmanager
def migrated_schemas():
    """The schemas django-tenants reports migrated in this process (the standard executor)."""
    seen: list[str] = []

    def migrated(sender, schema_name, **kwargs):
        seen.append(schema_name)

    schema_migrated.connect(migrated, weak=False, dispatch_uid="test_migration_state")
    try:
        yield seen
    finally:
        schema_migrated.disconnect(dispatch_uid="test_migration_state")


def migrate_schemas(**options) -> str:
    out = io.StringIO()
    call_command(MigrateSchemasCommand(), interactive=False, verbosity=1, stdout=out, **options)
    return out.getvalue()


def test_onboarding_records_the_current_state_on_both_paths():
    with spare_pool_lock():
        spare_pool_refill(size=1)
        pooled = new_hospital("Pooled")
        for spare in SpareSchema.objects.all():
            # As with an empty pool: the next onboarding creates and migrates its schema itself.
            SpareSchema.objects.filter(pk=spare.pk).update(fingerprint="unavailable-" + spare.fingerprint[:50])
        try:
            created = new_hospital("Created")
        finally:
            SpareSchema.objects.filter(fingerprint__startswith="unavailable-").update(fingerprint=STALE)
    assert record(pooled) == record(created) == migration_fingerprint()


def test_only_hospitals_recorded_at_the_current_state_are_skipped():
    unknown, stale, current = new_hospital("Unknown"), new_hospital("Stale"), new_hospital("Current")
    for hospital in (unknown, stale, current):
        one_migration_behind(hospital)
    set_record(unknown, STALE)  # no record
    set_record(stale, "the-state-of-an-older-release")
    # A record that claims more than the schema has: skipping it shows that the record is what decides.
    set_record(current, migration_fingerprint())

    with spare_pool_lock(), migrated_schemas() as migrated:
        spare_pool_refill(size=1)
        spare = SpareSchema.objects.filter(fingerprint=migration_fingerprint()).first()
        output = migrate_schemas(tenant=True, executor="standard")

    assert unknown.schema_name in migrated and stale.schema_name in migrated
    assert current.schema_name not in migrated and spare.schema_name not in migrated
    assert unapplied(unknown.schema_name) == unapplied(stale.schema_name) == []
    assert record(unknown) == record(stale) == migration_fingerprint()
    assert set(unapplied(current.schema_name)) == one_behind()  # skipped
    assert "up to date" in output and "to migrate" in output

    # --all-schemas migrates whatever the records say.
    with migrated_schemas() as migrated:
        migrate_schemas(tenant=True, executor="standard", all_schemas=True)
    assert current.schema_name in migrated
    assert unapplied(current.schema_name) == []


def test_nothing_to_migrate_migrates_nothing():
    migrate_schemas()  # public, every hospital and spare recorded current
    with migrated_schemas() as migrated:
        output = migrate_schemas()
    assert migrated == []
    assert "The public schema is up to date." in output
    assert " 0 to migrate." in output


def test_a_rollback_forgets_the_record_so_the_next_run_migrates_again():
    hospital = new_hospital("Rolled Back")
    assert record(hospital) == migration_fingerprint()
    one_migration_behind(hospital)  # a run to a named migration, through our command
    assert record(hospital) == STALE
    migrate_schemas(tenant=True, executor="standard")
    assert unapplied(hospital.schema_name) == []
    assert record(hospital) == migration_fingerprint()


@pytest.mark.parametrize("executor", ["standard", "multiprocessing"])
def test_a_failed_migration_keeps_its_record_and_fails_the_command(executor):
    broken = new_hospital("Broken")
    one_migration_behind(broken)
    set_record(broken, "the-state-of-an-older-release")
    # The newest migration's first table or column already there makes it fail, in this schema only.
    create, remove = conflicting_object_sql(newest_leaf_and_its_parent()[0], broken.schema_name)
    with connection.cursor() as cursor:
        cursor.execute(create)

    with pytest.raises(CommandError) as failure:
        migrate_schemas(tenant=True, executor=executor)
    message = str(failure.value)
    assert "failed" in message and "already exists" in message
    if executor == "standard":
        assert repr(broken.schema_name) in message
    assert record(broken) == "the-state-of-an-older-release"
    assert set(unapplied(broken.schema_name)) == one_behind()

    with connection.cursor() as cursor:
        cursor.execute(remove)
    migrate_schemas(tenant=True, executor=executor)  # the next run continues with it
    assert unapplied(broken.schema_name) == []
    assert record(broken) == migration_fingerprint()
