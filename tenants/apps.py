from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Hospitals (tenants)"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from core.cors import allow_own_frontend

        check_request_enabled.connect(allow_own_frontend, dispatch_uid="core.cors.allow_own_frontend")
