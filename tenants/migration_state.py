"""The migration state each schema is at, recorded in the public schema, so migrate_schemas skips what is in step.

The state is a fingerprint of the migration graph's leaf nodes
(`migration_fingerprint()`): a schema that this code migrated to the leaves is
at this code's fingerprint. Every hospital records it in
`Hospital.migration_state` (the platform's row records the public schema), every
spare in `SpareSchema.fingerprint` (tenants/provisioning.py); STALE ("") means
unknown.

The rules that make skipping safe:
- a record is written only after its schema's migrations succeeded (committed,
  or inside the caller's transaction when there is one, as in onboarding), so a
  record never claims more than its schema has. A crash in between leaves the
  old record, and the next run migrates that schema again (a no-op for Django);
- a run that may move a schema anywhere but to the leaves (a named migration,
  a rollback) makes its record unknown before it starts;
- only the current code's fingerprint skips: a record of any other code (older,
  newer, another branch) or none at all means "migrate it".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache

from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import get_public_schema_name, get_tenant_migration_order

from tenants.models import Hospital

STALE = ""


@cache
def migration_fingerprint() -> str:
    """The migration state of a freshly migrated schema: a hash of the migration graph's leaf nodes.

    Read from the migration files only (no database), once per process.
    """
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    leaves = sorted(f"{app}.{name}" for app, name in graph.leaf_nodes())
    return hashlib.sha256("\n".join(leaves).encode()).hexdigest()


def schema_states_recorded(database: str) -> bool:
    """False before tenants' 0003 migration is applied (or after it is rolled back): nothing is recorded yet."""
    with connections[database].cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
            "AND NOT attisdropped)",
            [f'"{get_public_schema_name()}".{Hospital._meta.db_table}', "migration_state"],
        )
        return cursor.fetchone()[0]


def hospital_schemas(database: str, *, behind_only: bool) -> tuple[list[str], int]:
    """(hospital schemas to migrate, in migrate_schemas' order; how many hospitals there are in all).

    With behind_only, the hospitals whose record is not the current state: no record, or another code's.
    """
    hospitals = Hospital.objects.using(database).exclude(schema_name=get_public_schema_name())
    order = get_tenant_migration_order()
    if order is not None:
        hospitals = hospitals.order_by(*order)
    total = hospitals.count()
    if behind_only:
        hospitals = hospitals.exclude(migration_state=migration_fingerprint())
    return list(hospitals.values_list("schema_name", flat=True)), total


def schema_is_recorded_current(database: str, schema_name: str) -> bool:
    return (
        Hospital.objects.using(database)
        .filter(schema_name=schema_name, migration_state=migration_fingerprint())
        .exists()
    )


def schema_state_record(database: str, schema_name: str) -> None:
    """Records that `schema_name` is at the current state: call it only once its migration to the leaves succeeded.

    A schema that is no hospital's (a spare, or a schema being created for one) changes nothing here.
    """
    Hospital.objects.using(database).filter(schema_name=schema_name).update(migration_state=migration_fingerprint())


def schema_states_forget(database: str, schema_names: Iterable[str] | None = None) -> None:
    """Makes the records of `schema_names` (default: every hospital's and the platform's) unknown."""
    hospitals = Hospital.objects.using(database)
    if schema_names is not None:
        hospitals = hospitals.filter(schema_name__in=list(schema_names))
    hospitals.exclude(migration_state=STALE).update(migration_state=STALE)
