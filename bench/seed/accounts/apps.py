from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "bench.seed.accounts"
    label = "accounts"  # the seed's AUTH_USER_MODEL is "accounts.User"
    default_auto_field = "django.db.models.BigAutoField"
