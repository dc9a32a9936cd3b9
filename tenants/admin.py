"""The Django admin on the platform domain: hospitals are onboarded, renamed, suspended and reactivated
through tenants.services, exactly like the platform API (and audited alike: the audit trail takes the
acting staff user from the request)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django_tenants.admin import TenantAdminMixin

from core.api import ServiceError
from tenants import selectors, services
from tenants.models import Hospital


class HospitalOnboardForm(forms.ModelForm):
    """The admin's add form: the same fields, and the same service, as POST /api/platform/hospitals/."""

    admin_email = forms.EmailField()
    admin_first_name = forms.CharField(required=False)
    admin_last_name = forms.CharField(required=False)

    class Meta:
        model = Hospital
        fields = ("name", "slug")

    def clean_slug(self):
        try:
            return services.hospital_slug_validate(self.cleaned_data["slug"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean_admin_email(self):
        # The service checks this too, but only after the form is valid (see add_view);
        # here it is shown on the form itself. A new hospital is a new realm: no address is taken in it.
        try:
            return get_user_model().objects.normalize_email(self.cleaned_data["admin_email"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return (("active", "Active"), ("suspended", "Suspended"))

    def queryset(self, request, queryset):
        if self.value() in ("active", "suspended"):
            return queryset.filter(is_active=self.value() == "active")
        return queryset


@admin.register(Hospital)
class HospitalAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ("name", "host", "status", "created")
    list_filter = (StatusFilter,)
    search_fields = ("name", "slug")
    # Only the name is edited in place; the slug, host and schema never change once created, and
    # suspension goes through the actions, so that the service runs (and the audit trail records it).
    change_fields = ("name", "slug", "host", "schema_name", "status", "created")
    readonly_fields = ("slug", "host", "schema_name", "status", "created")
    actions = ["suspend", "reactivate"]

    def get_queryset(self, request):
        return selectors.hospital_list()

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = HospitalOnboardForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return super().get_fields(request, obj) if obj is None else self.change_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    @admin.display(description="Host", ordering="slug")
    def host(self, hospital: Hospital) -> str:
        return services.hospital_host(hospital.slug)  # the domain hospital_create gave it

    @admin.display(description="Status", ordering="is_active")
    def status(self, hospital: Hospital) -> str:
        return "Active" if hospital.is_active else "Suspended"

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except ServiceError as exc:
            # The service refused after the form passed (e.g. a concurrent onboarding took the
            # slug or email first); the admin's transaction is rolled back, the form shown again.
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            services.hospital_update(hospital=obj, name=form.cleaned_data["name"])
            return
        created = services.hospital_create(
            name=form.cleaned_data["name"],
            slug=form.cleaned_data["slug"],
            admin_email=form.cleaned_data["admin_email"],
            admin_first_name=form.cleaned_data["admin_first_name"],
            admin_last_name=form.cleaned_data["admin_last_name"],
        )
        obj.pk, obj.schema_name = created.pk, created.schema_name
        self.message_user(
            request,
            f"An invitation to {services.hospital_host(created.slug)} has been emailed "
            f"to {form.cleaned_data['admin_email']}.",
            messages.INFO,
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # purging is `manage.py purge_hospital`, with confirmation

    @admin.action(description="Suspend the selected hospitals", permissions=["change"])
    def suspend(self, request, queryset):
        self._set_active(request, queryset, active=False)

    @admin.action(description="Reactivate the selected hospitals", permissions=["change"])
    def reactivate(self, request, queryset):
        self._set_active(request, queryset, active=True)

    def _set_active(self, request, queryset, *, active: bool) -> None:
        service, done = (
            (services.hospital_reactivate, "Reactivated") if active else (services.hospital_suspend, "Suspended")
        )
        changed, unchanged = [], []
        for hospital in queryset:
            # Hospitals already in that state are left alone: no audit event for a no-op.
            if hospital.is_active == active:
                unchanged.append(hospital.name)
            else:
                service(hospital=hospital)
                changed.append(hospital.name)
        if changed:
            subject = "Its subdomain answers" if len(changed) == 1 else "Their subdomains answer"
            consequence = "again" if active else "403 to every request until reactivated"
            self.message_user(request, f"{done}: {', '.join(changed)}. {subject} {consequence}.", messages.SUCCESS)
        if unchanged:
            state = "active" if active else "suspended"
            self.message_user(request, f"Already {state}, left as they were: {', '.join(unchanged)}.", messages.WARNING)
