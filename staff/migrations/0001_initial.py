"""Staff members, departments, invitations and the departments' guardian tables move here from `hospitals`.

No row is copied: the models take over the tables `hospitals` created (state only), then the tables are
renamed to this app's names (`ALTER TABLE ... RENAME`, a catalog change). Ids, foreign keys (which follow a
renamed table), constraints and guardian rows stay as they were. `hospitals` 0005 points its foreign keys
here and forgets the models; the content types (public schema only) are renamed by `tenants` 0003, so that
`auth.Permission` and guardian rows keep meaning the same models.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

ROLES = [
    ("hospital_admin", "Hospital admin"),
    ("doctor", "Doctor"),
    ("nurse", "Nurse"),
    ("receptionist", "Receptionist"),
]
# Each model and the table it took over from hospitals.
MOVED = {
    "staffmember": "hospitals_staffmember",
    "department": "hospitals_department",
    "invitation": "hospitals_invitation",
    "departmentuserobjectpermission": "hospitals_departmentuserobjectpermission",
    "departmentgroupobjectpermission": "hospitals_departmentgroupobjectpermission",
}


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        # The tables exist from hospitals' own migrations (in a new schema too).
        ("hospitals", "0004_patient_registered_by"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="StaffMember",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("role", models.CharField(choices=ROLES, max_length=32)),
                        ("is_active", models.BooleanField(default=True)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"ordering": ["created"], "db_table": MOVED["staffmember"]},
                ),
                migrations.CreateModel(
                    name="Department",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("code", models.SlugField(max_length=32, unique=True)),
                        (
                            "head",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="staff.staffmember",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["name"],
                        "permissions": [("view_department_patients", "Can view the patients of the department")],
                        "db_table": MOVED["department"],
                    },
                ),
                migrations.AddField(
                    model_name="staffmember",
                    name="department",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="staff",
                        to="staff.department",
                    ),
                ),
                migrations.CreateModel(
                    name="Invitation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("email", models.EmailField(max_length=254)),
                        ("role", models.CharField(choices=ROLES, max_length=32)),
                        ("token_hash", models.CharField(max_length=64, unique=True)),
                        ("created", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField()),
                        ("accepted_at", models.DateTimeField(blank=True, null=True)),
                        ("revoked_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "invited_by",
                            models.ForeignKey(
                                blank=True,
                                help_text="Empty: invited by the platform at onboarding.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"ordering": ["-created"], "db_table": MOVED["invitation"]},
                ),
                migrations.CreateModel(
                    name="DepartmentUserObjectPermission",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "content_object",
                            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="staff.department"),
                        ),
                        (
                            "permission",
                            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="auth.permission"),
                        ),
                        (
                            "user",
                            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to=settings.AUTH_USER_MODEL),
                        ),
                    ],
                    options={
                        "abstract": False,
                        "unique_together": {("user", "permission", "content_object")},
                        "db_table": MOVED["departmentuserobjectpermission"],
                    },
                ),
                migrations.CreateModel(
                    name="DepartmentGroupObjectPermission",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "content_object",
                            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="staff.department"),
                        ),
                        ("group", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="auth.group")),
                        (
                            "permission",
                            models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to="auth.permission"),
                        ),
                    ],
                    options={
                        "abstract": False,
                        "unique_together": {("group", "permission", "content_object")},
                        "db_table": MOVED["departmentgroupobjectpermission"],
                    },
                ),
            ],
        ),
        # The tables take this app's names: staff_staffmember, staff_department, ...
        *(migrations.AlterModelTable(name=name, table=None) for name in MOVED),
    ]
