from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.mfa.policy import mfa_required_for
from accounts.mfa.services import mfa_methods, mfa_reauthenticate
from accounts.models import User
from core.api import ServiceError


class SecondFactorAdminLoginForm(AdminAuthenticationForm):
    """The admin's login asks platform staff who have a second factor for its code too (installed on
    `admin.site` by AccountsConfig.ready()); the code is checked like the API's second step: on the account's
    code budget (429 past it), each TOTP code once. An account that must have one and has none is refused.
    A passkey is not asked for on this form (it has no script to call WebAuthn): an account whose only factor
    is a passkey gives one of its recovery codes here."""

    code = forms.CharField(
        max_length=32, required=False, label="Authenticator code or recovery code (if you have a second factor)"
    )

    def clean(self):
        cleaned = super().clean()  # the password, on the login budget (HospitalEmailBackend)
        user = self.get_user()
        if user is None:
            return cleaned
        if not mfa_methods(user):
            if mfa_required_for(user):
                raise forms.ValidationError(
                    "This account must have a second factor: enrol one on the platform's API "
                    "(/accounts/mfa/totp/) first.",
                    code="mfa_enrollment_required",
                )
            return cleaned
        typed = "".join(cleaned.get("code", "").split())
        if not typed:
            raise forms.ValidationError("This account has a second factor: enter its code.", code="mfa_required")
        as_totp = len(typed) == 6 and typed.isdigit()
        try:
            mfa_reauthenticate(
                user=user,
                request=self.request,
                code=typed if as_totp else "",
                recovery_code="" if as_totp else typed,
            )
        except ServiceError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        return cleaned


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "hospital", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "hospital")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password", "hospital")}),
        ("Name", {"fields": ("first_name", "last_name")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "hospital", "password1", "password2")}),)
