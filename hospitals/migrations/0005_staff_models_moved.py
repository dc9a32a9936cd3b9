"""StaffMember, Department, Invitation and the departments' guardian tables now belong to `staff`.

State only: the foreign keys of patients, care teams and notes point at the same rows as before (the
tables were renamed by staff 0001, and PostgreSQL's foreign keys follow a renamed table), and this app
forgets the models it no longer has. No row and no constraint changes.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hospitals", "0004_patient_registered_by"),
        ("staff", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="patient",
                    name="department",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="patients",
                        to="staff.department",
                    ),
                ),
                migrations.AlterField(
                    model_name="patient",
                    name="registered_by",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="registered_patients",
                        to="staff.staffmember",
                    ),
                ),
                migrations.AlterField(
                    model_name="careteammembership",
                    name="staff",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="care_teams", to="staff.staffmember"
                    ),
                ),
                migrations.AlterField(
                    model_name="clinicalnote",
                    name="author",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="staff.staffmember"
                    ),
                ),
                migrations.DeleteModel(name="DepartmentUserObjectPermission"),
                migrations.DeleteModel(name="DepartmentGroupObjectPermission"),
                migrations.DeleteModel(name="Invitation"),
                migrations.RemoveField(model_name="staffmember", name="department"),
                migrations.DeleteModel(name="Department"),
                migrations.DeleteModel(name="StaffMember"),
            ],
        ),
    ]
