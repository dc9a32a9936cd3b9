from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = "Single sign-on (OpenID Connect, per hospital)"

    def ready(self) -> None:
        from accounts.policy import password_rule_register
        from sso.services import password_rule

        password_rule_register(password_rule)
