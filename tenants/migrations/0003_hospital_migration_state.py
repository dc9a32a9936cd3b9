from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0002_spareschema"),
    ]

    operations = [
        migrations.AddField(
            model_name="hospital",
            name="migration_state",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
        ),
    ]
