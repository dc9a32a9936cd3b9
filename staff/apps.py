from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = "Hospital staff"

    def ready(self) -> None:
        # accounts sits below staff and never imports it: the login asks this hospital's MFA policy through
        # the requirement registered now (contract in accounts/mfa/policy.py).
        from accounts.mfa.policy import mfa_requirement_register
        from staff.mfa import staff_mfa_required

        mfa_requirement_register(staff_mfa_required)
