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

        _allauth_checks_for_realms()

        for model in (SocialApp, SocialAccount, SocialToken):
            if admin.site.is_registered(model):
                admin.site.unregister(model)

        # The admin's login asks for the second factor too (accounts/admin.py), and platform staff may be
        # required to have one (MFA_REQUIRED_FOR_PLATFORM_STAFF, on in production).
        from accounts.admin import SecondFactorAdminLoginForm
        from accounts.mfa.policy import mfa_requirement_register, platform_staff_mfa_required

        admin.site.login_form = SecondFactorAdminLoginForm
        admin.site.login_template = "accounts/admin_login.html"
        mfa_requirement_register(platform_staff_mfa_required)


# allauth's one finding that does not hold here (it has no id, so SILENCED_SYSTEM_CHECKS cannot name it).
REALM_EMAIL_FINDING = "Using email as a login method requires ACCOUNT_UNIQUE_EMAIL"


def _allauth_checks_for_realms() -> None:
    """allauth's settings check, less the demand for platform-wide unique emails.

    allauth wants one account per address because its own login looks an email
    up across all users. Ours never does: every lookup is within the request's
    hospital (ARCHITECTURE.md "Accounts"). Every other finding of that check stays.
    """
    from allauth.account import checks as allauth_checks
    from django.core.checks import register, registry

    registry.registry.registered_checks.discard(allauth_checks.settings_check)

    @register()
    def allauth_settings_check(app_configs, **kwargs):
        return [
            finding
            for finding in allauth_checks.settings_check(app_configs, **kwargs)
            if finding.msg != REALM_EMAIL_FINDING
        ]
