"""The schema editor of the backend: in a hospital's schema, a foreign key to a public table gets no constraint.

ARCHITECTURE.md "References across schemas": such a constraint puts PostgreSQL's triggers on the public table,
per hospital. The models already say `db_constraint=False` (core/crossschema.py); this holds the rule for what
the models do not say: guardian's own tables, and the history that every new schema replays (the migrations
written before the rule). So a new hospital's schema never creates one, and never takes a lock on a public
table to do it. A hospital migrated before the rule had them; the migrations that came with it drop them.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from django.apps import apps
from django.conf import settings
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor
from django_tenants.utils import get_public_schema_name


@functools.cache  # the installed apps are fixed once Django is set up
def _tenant_app_labels() -> frozenset[str]:
    return frozenset(config.label for config in apps.get_app_configs() if config.name in settings.TENANT_APPS)


class DatabaseSchemaEditor(PostgresSchemaEditor):
    def _points_at_public(self, field) -> bool:
        """A relation, from a hospital's (or a spare's) schema, to a model that lives only in public."""
        schema_name = self.connection.schema_name  # type: ignore[attr-defined]  # django-tenants' connection
        if schema_name == get_public_schema_name() or field.remote_field is None:
            return False
        return field.remote_field.model._meta.app_label not in _tenant_app_labels()

    @contextmanager
    def _without_constraints_on_public(self, fields):
        """The fields' constraints off for one operation (migration states' fields are the state's own)."""
        lifted = [field for field in fields if self._points_at_public(field) and field.db_constraint]
        for field in lifted:
            field.db_constraint = False
        try:
            yield
        finally:
            for field in lifted:
                field.db_constraint = True

    def create_model(self, model):
        with self._without_constraints_on_public(model._meta.local_fields):
            super().create_model(model)

    def add_field(self, model, field):
        with self._without_constraints_on_public([field]):
            super().add_field(model, field)

    def alter_field(self, model, old_field, new_field, strict=False):
        # Only the new side: a constraint the old side really had (a schema migrated before the rule) is dropped.
        with self._without_constraints_on_public([new_field]):
            super().alter_field(model, old_field, new_field, strict)
