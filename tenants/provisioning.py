"""Fast onboarding: a pool of spare schemas, created and migrated ahead of time.

Creating a schema and running every tenant migration takes about half a second,
and more as hospitals accumulate. Instead, a new hospital claims a spare schema
that is already migrated and renames it (`ALTER SCHEMA ... RENAME` only updates
one catalog row); Celery refills the pool afterwards (`tenants.tasks`).

A spare is claimed only if its `fingerprint` is the current migration state
(`migration_fingerprint()`, tenants/migration_state.py: hospitals record theirs
the same way), so a spare made before a new migration never becomes a hospital.
`migrate_schemas` (tenants/management/commands) migrates the spares that are
behind along with the hospitals and stamps them again; `spare_pool_refill`
re-migrates or drops whatever is still stale.

Locking: a claim locks one spare row (`FOR UPDATE SKIP LOCKED`) inside the
caller's transaction, so concurrent onboardings take different spares and never
wait for each other. Whatever changes the pool otherwise (refills, migrating the
spares) holds the pool's advisory lock, one at a time.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.transaction import TransactionManagementError
from django_tenants.clone import CloneSchema
from django_tenants.postgresql_backend.base import is_valid_schema_name
from django_tenants.utils import get_tenant_database_alias, quote_schema_name, schema_exists

from tenants.migration_state import STALE, migration_fingerprint
from tenants.models import SpareSchema

logger = logging.getLogger(__name__)

SPARE_PREFIX = "spare_"
DEFAULT_POOL_SIZE = 5
# A spare's fingerprint is STALE ("") while its state is unknown: being migrated,
# or left partly migrated. Never current, so never claimed.
# pg_advisory_lock key of the pool (any fixed 64-bit number, derived from a name for readability).
POOL_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"tenants.spare_pool", digest_size=8).digest(), "big", signed=True)

_lock_depth = threading.local()


def _connection():
    return connections[get_tenant_database_alias()]


@contextmanager
def spare_pool_lock() -> Iterator[None]:
    """Holds the pool's advisory lock: one refill or spare migration at a time. Re-entrant within a thread.

    The lock lives on a connection of its own, because migrate_schemas closes
    the default connection after each schema (which would release a session lock).
    """
    if getattr(_lock_depth, "value", 0):
        _lock_depth.value += 1
        try:
            yield
        finally:
            _lock_depth.value -= 1
        return
    lock_connection = connections.create_connection(get_tenant_database_alias())
    try:
        with lock_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [POOL_LOCK_KEY])
        _lock_depth.value = 1
        try:
            yield
        finally:
            _lock_depth.value = 0
    finally:
        lock_connection.close()  # ends the session, which releases the lock


@contextmanager
def _search_path_kept() -> Iterator[None]:
    """Puts the connection back on the schema it was on: a failed migration leaves it on the one it migrated."""
    connection = _connection()
    previous = connection.tenant
    try:
        yield
    finally:
        connection.set_tenant(previous)


def _migrate_schema(schema_name: str) -> None:
    """Migrates one schema the way django-tenants migrates a new tenant's (Hospital.create_schema).

    The standard executor: inside a transaction, it leaves the connection open.
    """
    call_command(
        "migrate_schemas", tenant=True, schema_name=schema_name, executor="standard", interactive=False, verbosity=0
    )


def _schema_is_current(schema_name: str) -> bool:
    """Whether the schema is exactly where a fresh migration leads: nothing left to apply, nothing unknown applied."""
    connection = _connection()
    with _search_path_kept():
        connection.set_schema(schema_name, include_public=False)  # its own django_migrations, not public's
        executor = MigrationExecutor(connection)
        loader = executor.loader
        if executor.migration_plan(loader.graph.leaf_nodes()):
            return False
        return set(loader.applied_migrations) <= set(loader.disk_migrations)


# What a schema is made of, for comparing two schemas: every row with the schema's name replaced by "<schema>".
CATALOG_QUERIES = {
    "relations": "SELECT relname, relkind, relpersistence FROM pg_class WHERE relnamespace = %(oid)s ORDER BY 1",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attcollation
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %(oid)s ORDER BY 1, 2""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(name)s ORDER BY 1, 2",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = %(oid)s AND NOT t.tgisinternal ORDER BY 1, 2""",
    "sequences": """
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache,
               s.seqcycle
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = %(oid)s ORDER BY 1""",
    "sequence_owners": """
        SELECT c.relname, d.refobjid::regclass::text, d.refobjsubid, d.deptype FROM pg_depend d
        JOIN pg_class c ON c.oid = d.objid
        WHERE c.relkind = 'S' AND c.relnamespace = %(oid)s AND d.refclassid = 'pg_class'::regclass ORDER BY 1, 2""",
    "functions": "SELECT proname, pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = %(oid)s ORDER BY 1, 2",
    # The privileges in effect: no ACL means the owner's defaults, which clone_schema spells out.
    "privileges": """
        SELECT relname,
               coalesce(relacl, acldefault(CASE relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", relowner))::text
        FROM pg_class WHERE relnamespace = %(oid)s ORDER BY 1""",
    "migrations": "SELECT app, name FROM {schema}.django_migrations ORDER BY 1, 2",
}


def schema_catalog(schema_name: str) -> dict[str, list[tuple[str, ...]]]:
    """Everything PostgreSQL's catalog says about a schema's objects (and its applied migrations), comparable
    between two schemas."""
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema_name])
        oid = cursor.fetchone()[0]
        catalog = {}
        for part, query in CATALOG_QUERIES.items():
            cursor.execute(query.replace("{schema}", quote_schema_name(schema_name)), {"oid": oid, "name": schema_name})
            catalog[part] = [tuple(str(value).replace(schema_name, "<schema>") for value in row) for row in cursor]
    return catalog


def _clone_repair(template: str, clone: str) -> None:
    """Puts right what django-tenants' clone_schema gets wrong, as measured by tests/test_provisioning.py:
    unique constraints (CREATE TABLE ... LIKE names them afresh) and serial sequences' types (it makes them bigint).
    """
    connection = _connection()
    with connection.cursor() as cursor:

        def named(schema: str) -> dict[tuple[str, ...], str]:
            cursor.execute(
                "SELECT c.relname, k.contype, pg_get_constraintdef(k.oid), k.conname FROM pg_constraint k "
                "JOIN pg_class c ON c.oid = k.conrelid WHERE k.connamespace = %s::regnamespace",
                [quote_schema_name(schema)],
            )
            return {(rel, kind, definition.replace(schema, "<schema>")): name for rel, kind, definition, name in cursor}

        want = named(template)
        for (relation, kind, definition), name in named(clone).items():
            wanted = want.get((relation, kind, definition))
            if wanted and wanted != name:
                cursor.execute(
                    f"ALTER TABLE {quote_schema_name(clone)}.{quote_schema_name(relation)} "
                    f"RENAME CONSTRAINT {quote_schema_name(name)} TO {quote_schema_name(wanted)}"
                )
        cursor.execute(
            "SELECT c.relname, format_type(s.seqtypid, NULL) FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
            "WHERE c.relnamespace = %s::regnamespace",
            [quote_schema_name(template)],
        )
        for sequence, type_name in cursor.fetchall():
            cursor.execute(f"ALTER SEQUENCE {quote_schema_name(clone)}.{quote_schema_name(sequence)} AS {type_name}")


class _NotACopy(Exception):
    pass


def _spare_schema_clone(schema_name: str) -> bool:
    """Creates `schema_name` as a copy of a current spare, if there is one and the copy's catalog is the template's.

    The template's row stays locked meanwhile, so no onboarding renames it
    under the copy. Inside a savepoint: a copy that differs in anything is
    rolled back, and the caller migrates the schema instead.
    """
    template = (
        SpareSchema.objects.select_for_update(skip_locked=True).filter(fingerprint=migration_fingerprint()).first()
    )
    if template is None:
        return False
    try:
        with transaction.atomic(using=_connection().alias):
            CloneSchema().clone_schema(template.schema_name, schema_name)
            _clone_repair(template.schema_name, schema_name)
            if schema_catalog(schema_name) != schema_catalog(template.schema_name):
                raise _NotACopy
    except (_NotACopy, DatabaseError):
        logger.warning("Spare schema %s could not be copied exactly; migrating it instead", schema_name, exc_info=True)
        return False
    return True


def spare_schema_create() -> SpareSchema:
    """Creates one spare schema at the current migration state and records it.

    A copy of a current spare (SQL only, ~10x faster than migrating, and
    checked identical in the catalog) when SPARE_SCHEMA_CLONE is on (the
    default) and a spare exists; else CREATE SCHEMA and every tenant migration.
    All in one transaction: if anything fails, the schema is gone with it.
    """
    schema_name = SPARE_PREFIX + secrets.token_hex(8)
    connection = _connection()
    with _search_path_kept(), transaction.atomic(using=connection.alias):
        if not (getattr(settings, "SPARE_SCHEMA_CLONE", True) and _spare_schema_clone(schema_name)):
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE SCHEMA {quote_schema_name(schema_name)}")
            _migrate_schema(schema_name)
        return SpareSchema.objects.create(schema_name=schema_name, fingerprint=migration_fingerprint())


def spare_schema_drop(*, schema_name: str) -> None:
    """Drops a spare schema and its row. A spare claimed meanwhile (renamed, row deleted) is left alone."""
    if not schema_name.startswith(SPARE_PREFIX):
        raise ValueError(f"{schema_name!r} is not a spare schema")
    with transaction.atomic(using=_connection().alias):
        # Deleting the row first waits for a claim in flight; if that claim
        # commits, the schema has a hospital's name and DROP ... IF EXISTS misses it.
        SpareSchema.objects.filter(schema_name=schema_name).delete()
        with _connection().cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {quote_schema_name(schema_name)} CASCADE")


def spare_schema_claim(*, schema_name: str) -> bool:
    """Renames a current spare schema to `schema_name`; False if there is none (or `schema_name` exists already).

    Call it inside the caller's transaction.atomic(), before saving the
    Hospital: a rollback puts the spare back under its own name, and
    Hospital.save() finds the schema there (create_schema(check_if_exists=True))
    and runs no migrations.
    """
    connection = _connection()
    if not connection.in_atomic_block:
        raise TransactionManagementError("spare_schema_claim() must run inside the caller's transaction.atomic().")
    if not is_valid_schema_name(schema_name):
        raise ValueError(f"Invalid schema name: {schema_name!r}")
    if schema_exists(schema_name, connection.alias):
        return False  # left to the default path, as before spares existed
    spare = (
        SpareSchema.objects.select_for_update(skip_locked=True)
        .filter(fingerprint=migration_fingerprint())
        .order_by("created")
        .first()
    )
    if spare is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER SCHEMA {quote_schema_name(spare.schema_name)} RENAME TO {quote_schema_name(schema_name)}"
        )
    spare.delete()
    return True


def _spare_schema_remigrate(schema_name: str) -> bool:
    """Brings a stale spare to the current state; True if it got there (else the caller drops it)."""
    try:
        with _search_path_kept(), transaction.atomic(using=_connection().alias):
            spare = SpareSchema.objects.select_for_update().filter(schema_name=schema_name).first()
            if spare is None or not schema_exists(schema_name, _connection().alias):
                return False
            _migrate_schema(schema_name)
            if not _schema_is_current(schema_name):
                return False
            spare.fingerprint = migration_fingerprint()
            spare.save(update_fields=["fingerprint"])
            return True
    except Exception:
        logger.warning("Spare schema %s could not be migrated; dropping it", schema_name, exc_info=True)
        return False


def spare_pool_refill(*, size: int | None = None) -> int:
    """Creates spares until `size` (default settings.SPARE_SCHEMA_POOL_SIZE) current ones exist; returns how many.

    Stale spares are migrated to the current state first, or dropped if that
    fails. Safe to run concurrently: refills take turns on the pool's lock.
    Call it outside a transaction.
    """
    if size is None:
        size = getattr(settings, "SPARE_SCHEMA_POOL_SIZE", DEFAULT_POOL_SIZE)
    current = migration_fingerprint()
    created = 0
    with spare_pool_lock():
        for schema_name in list(SpareSchema.objects.exclude(fingerprint=current).values_list("schema_name", flat=True)):
            if not _spare_schema_remigrate(schema_name):
                spare_schema_drop(schema_name=schema_name)
        while SpareSchema.objects.filter(fingerprint=current).count() < size:
            spare_schema_create()
            created += 1
    return created


def spare_pool_migrate(*, migrate: Callable[[list[str]], None], behind_only: bool = False) -> list[str]:
    """Runs `migrate(schema_names)` over every spare (with behind_only, every spare not at the current
    state), then stamps each with the state it reached.

    For migrate_schemas, which passes its own executor. The spares are marked
    stale first (after any claim in flight has committed), so none is claimed
    while it is being migrated; afterwards each gets the current fingerprint
    only if it is fully migrated, whatever the run's arguments were (an app
    rolled back, --plan, --check...).
    """
    alias = _connection().alias
    with spare_pool_lock():
        with transaction.atomic(using=alias):
            spares = SpareSchema.objects.select_for_update()
            if behind_only:
                spares = spares.exclude(fingerprint=migration_fingerprint())
            rows = list(spares.values_list("pk", "schema_name"))
            SpareSchema.objects.filter(pk__in=[pk for pk, _ in rows]).update(fingerprint=STALE)
        # A row without its schema stays stale: the next refill drops it.
        names = [name for _, name in rows if schema_exists(name, alias)]
        try:
            if names:
                migrate(list(names))
        finally:
            current = migration_fingerprint()
            for name in names:
                fingerprint = current if _schema_is_current(name) else STALE
                SpareSchema.objects.filter(schema_name=name).update(fingerprint=fingerprint)
    return names
