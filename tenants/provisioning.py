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
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.transaction import TransactionManagementError
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


def spare_schema_create() -> SpareSchema:
    """Creates and migrates one spare schema, and records it at the current migration state.

    All in one transaction: if anything fails, the schema is gone with it.
    """
    schema_name = SPARE_PREFIX + secrets.token_hex(8)
    connection = _connection()
    with _search_path_kept(), transaction.atomic(using=connection.alias):
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
