"""django-tenants' migrate_schemas, skipping the schemas already at the current migration state, and
migrating the spare schemas too.

A run that takes schemas to the leaves of the migration graph (no app label or
migration name, no --plan or --check) migrates only the public schema,
hospitals and spares whose recorded state (tenants/migration_state.py) is not
this code's: with nothing to apply it reads one table and migrates nothing.
Each schema's record is written once its migration succeeded; a schema that
fails keeps its old record and the command stops with an error naming it, so
the next run continues with it. `--all-schemas` (or `--prune`) migrates every
schema whatever its record says, for a schema changed outside this command.

Any other run (to a named migration, a rollback) makes the records of the
schemas it touches unknown first, then runs as django-tenants does. A run for
one schema (-s) always migrates it.

Django takes a command from the first app in INSTALLED_APPS that has one, so
this one is `manage.py migrate_schemas` only while "tenants" comes before
"django_tenants" in SHARED_APPS.
"""

import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import CommandError
from django.db import connections
from django_tenants.management.commands import SyncCommon
from django_tenants.management.commands.migrate_schemas import GET_EXECUTOR_FUNCTION, MigrateSchemasCommand
from django_tenants.signals import schema_migrated, schema_pre_migration
from django_tenants.utils import get_public_schema_name, quote_schema_name, schema_exists

from tenants.migration_state import (
    hospital_schemas,
    schema_is_recorded_current,
    schema_state_record,
    schema_states_forget,
    schema_states_recorded,
)
from tenants.models import SpareSchema
from tenants.provisioning import spare_pool_migrate


class Command(MigrateSchemasCommand):
    help = (
        MigrateSchemasCommand.help + " Schemas recorded at the current migration state are skipped; a run over all "
        "tenants migrates the spare schemas too."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--all-schemas",
            action="store_true",
            dest="all_schemas",
            help="Migrate every schema, also those recorded at the current state (after a schema was changed "
            "outside migrate_schemas).",
        )

    def handle(self, *args, **options):
        SyncCommon.handle(self, *args, **options)  # self.sync_public, sync_tenant, schema_name, executor
        database = options["database"]
        dry_run = options.get("plan") or options.get("check_unapplied")
        to_leaves = not (options.get("app_label") or dry_run)
        recorded = schema_states_recorded(database)
        # django-tenants' handle() sets schema_name to "public" when it was not given: read it before.
        one_schema = self.schema_name
        if to_leaves and recorded:
            self.migrate_to_leaves(database, skip=not (options["all_schemas"] or options.get("prune")))
        else:
            if recorded and not dry_run:  # the schemas may end up anywhere: their records no longer hold
                schema_states_forget(database, self.touched_schemas())
            super().handle(*args, **options)
        if self.sync_tenant and not one_schema and self.spare_table_exists(database):
            executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
            names = spare_pool_migrate(
                migrate=lambda schema_names: executor.run_migrations(tenants=schema_names),
                behind_only=to_leaves and not (options["all_schemas"] or options.get("prune")),
            )
            self.say(f"Migrated {len(names)} spare schema(s).")

    def touched_schemas(self) -> list[str] | None:
        """The schemas this run migrates: None for every hospital and the platform."""
        if self.schema_name:
            return [self.schema_name]
        if self.sync_tenant:
            return None
        return [get_public_schema_name()]

    def migrate_to_leaves(self, database: str, *, skip: bool) -> None:
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        public = get_public_schema_name()
        with recording(database) as current:
            if self.sync_public:
                if skip and not self.schema_name and schema_is_recorded_current(database, public):
                    self.say("The public schema is up to date.")
                else:
                    self.run(executor, [public], current)
            if not self.sync_tenant:
                return
            if self.schema_name and self.schema_name != public:
                if not schema_exists(self.schema_name, database):
                    raise CommandError(f'Schema "{self.schema_name}" does not exist')
                self.run(executor, [self.schema_name], current)
                return
            if self.schema_name:
                return
            names, total = hospital_schemas(database, behind_only=skip)
            self.say(f"Hospitals: {total}; {total - len(names)} up to date, {len(names)} to migrate.")
            if not names:
                return
            began = time.monotonic()
            self.run(executor, names, current)
            seconds = time.monotonic() - began
            self.say(
                f"Migrated {len(names)} hospital schema(s) in {seconds:.1f} s ({seconds / len(names):.3f} s each)."
            )

    def run(self, executor, names: list[str], current: list[str]) -> None:
        """Migrates `names`; a failure becomes a CommandError naming the schema (when this process ran it)."""
        try:
            executor.run_migrations(tenants=list(names))
        except Exception as exc:
            self.stderr.write(traceback.format_exc())
            where = f"schema {current[0]!r}" if current else "a schema (named in the output above)"
            raise CommandError(
                f"Migrating {where} failed: {exc.__class__.__name__}: {exc}. Its recorded state is unchanged, so "
                "the next migrate_schemas migrates it again; schemas migrated before it are recorded as such."
            ) from exc

    def say(self, message: str) -> None:
        if int(self.options.get("verbosity", 1)) >= 1:
            self.stdout.write(message)

    @staticmethod
    def spare_table_exists(database: str) -> bool:
        """False before tenants' 0002 migration is applied (or after it is rolled back)."""
        table = f"{quote_schema_name(get_public_schema_name())}.{SpareSchema._meta.db_table}"
        with connections[database].cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            return cursor.fetchone()[0]


@contextmanager
def recording(database: str) -> Iterator[list[str]]:
    """Records each schema as current once django-tenants reports it migrated (schema_migrated is sent
    only after that schema's migrate succeeded, in whichever process ran it: the multiprocessing
    executor's workers are forks that inherit these receivers). Yields [the schema being migrated], in
    this process."""
    current: list[str] = []

    def started(sender, schema_name, **kwargs):
        current[:] = [schema_name]

    def migrated(sender, schema_name, **kwargs):
        schema_state_record(database, schema_name)
        current.clear()

    schema_pre_migration.connect(started, weak=False, dispatch_uid="tenants.migration_state.started")
    schema_migrated.connect(migrated, weak=False, dispatch_uid="tenants.migration_state.migrated")
    try:
        yield current
    finally:
        schema_pre_migration.disconnect(dispatch_uid="tenants.migration_state.started")
        schema_migrated.disconnect(dispatch_uid="tenants.migration_state.migrated")
