"""The content types of the models that moved from `hospitals` to `staff` take the new app label.

Content types and permissions live in the public schema only (ARCHITECTURE.md, "Where each model lives"),
so this runs here, in a public-schema app, and not in the tenant migrations that move the tables
(staff 0001, hospitals 0005). Renaming keeps every id: `auth.Permission` rows, guardian's rows in each
hospital schema (which point at both) and the admin's log keep pointing at the same models.

It must run before `post_migrate` creates content types for `staff` (which it does in the same
`migrate_schemas` run, after all migrations of the public schema), else the new label would get new ids
and new permissions. A database created from scratch has no `hospitals` content types for these models
yet: nothing to rename, and `post_migrate` then creates them under `staff`.
"""

from django.db import migrations

MOVED = ("staffmember", "department", "invitation", "departmentuserobjectpermission", "departmentgroupobjectpermission")


def _relabel(apps, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=old, model=model).exists():
            continue
        if ContentType.objects.filter(app_label=new, model=model).exists():
            # Both labels have rows (post_migrate ran for the new label first): merging them would mean
            # rewriting guardian rows in every hospital schema. Stop rather than guess.
            raise RuntimeError(
                f"content types {old}.{model} and {new}.{model} both exist; "
                f"the permissions of {new}.{model} are not the ones guardian rows point at"
            )
        ContentType.objects.filter(app_label=old, model=model).update(app_label=new)
    # The process's own cache (not the historical model's) may hold the old labels.
    from django.contrib.contenttypes.models import ContentType as CurrentContentType

    CurrentContentType.objects.clear_cache()


def forwards(apps, schema_editor) -> None:
    _relabel(apps, "hospitals", "staff")


def backwards(apps, schema_editor) -> None:
    _relabel(apps, "staff", "hospitals")


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_spareschema"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
