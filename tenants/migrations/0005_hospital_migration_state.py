from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0004_hospital_session_idle_minutes_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="hospital",
            name="migration_state",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
    ]
