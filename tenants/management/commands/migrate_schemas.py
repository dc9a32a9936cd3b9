"""django-tenants' migrate_schemas, which also migrates the spare schemas when it migrates every hospital.

A run over all tenants (no -s) migrates the spares afterwards with the same
executor (--executor standard|multiprocessing) and the same arguments, and
stamps each spare with the migration state it reached, so onboarding never
claims a spare that misses a migration. A run for one schema (-s) is unchanged.

Django takes a command from the first app in INSTALLED_APPS that has one, so
this one is `manage.py migrate_schemas` only while "tenants" comes before
"django_tenants" in SHARED_APPS.
"""

from django.db import connections
from django_tenants.management.commands.migrate_schemas import GET_EXECUTOR_FUNCTION, MigrateSchemasCommand
from django_tenants.utils import get_public_schema_name, quote_schema_name

from tenants.models import SpareSchema
from tenants.provisioning import spare_pool_migrate


class Command(MigrateSchemasCommand):
    help = MigrateSchemasCommand.help + " A run over all tenants migrates the spare schemas too."

    def handle(self, *args, **options):
        super().handle(*args, **options)
        if not self.sync_tenant or options.get("schema_name") or not self.spare_table_exists(options["database"]):
            return
        executor = GET_EXECUTOR_FUNCTION(codename=self.executor)(self.args, self.options)
        names = spare_pool_migrate(migrate=lambda schema_names: executor.run_migrations(tenants=schema_names))
        if int(options.get("verbosity", 1)) >= 1:
            self.stdout.write(f"Migrated {len(names)} spare schema(s).")

    @staticmethod
    def spare_table_exists(database: str) -> bool:
        """False before tenants' 0002 migration is applied (or after it is rolled back)."""
        table = f"{quote_schema_name(get_public_schema_name())}.{SpareSchema._meta.db_table}"
        with connections[database].cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            return cursor.fetchone()[0]
