"""Every stored email in its canonical form (accounts/addresses.py), before 0003 makes it a rule."""

from django.db import migrations

from accounts.addresses import canonical_email


def canonicalise(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    for user in User.objects.only("email").iterator():
        email = canonical_email(user.email)  # every stored address passed Django's validator: it has one
        if email != user.email:
            User.objects.filter(pk=user.pk).update(email=email)
            EmailAddress.objects.filter(user_id=user.pk, email=user.email).update(email=email)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(canonicalise, migrations.RunPython.noop)]
