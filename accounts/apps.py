from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # allauth.socialaccount is installed only because dj_rest_auth.registration imports it; there is
        # no social login, so its admin pages would only invite platform staff to configure one.
        # (Runs after the admin's autodiscover: django.contrib.admin comes first in INSTALLED_APPS.)
        from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
        from django.contrib import admin

        for model in (SocialApp, SocialAccount, SocialToken):
            if admin.site.is_registered(model):
                admin.site.unregister(model)
