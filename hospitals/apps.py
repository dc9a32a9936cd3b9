from django.apps import AppConfig


class HospitalsConfig(AppConfig):
    name = "hospitals"
    verbose_name = "Hospital records"

    def ready(self) -> None:
        # staff sits below hospitals and never imports it: a role change reaches the patient grants
        # kept here through the hook registered now (contract in staff/hooks.py).
        from hospitals.services import staff_role_grants_move
        from staff.hooks import role_change_hook_register

        role_change_hook_register(staff_role_grants_move)
