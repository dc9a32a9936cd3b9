from django import forms
from django.contrib import admin
from django_tenants.admin import TenantAdminMixin

from config.api import ServiceError
from tenants import selectors, services
from tenants.models import Domain, Hospital


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


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


@admin.register(Hospital)
class HospitalAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "is_active", "created")
    search_fields = ("name", "slug")
    readonly_fields = ("slug", "schema_name", "is_active", "created")
    actions = ["suspend", "reactivate"]
    inlines = [DomainInline]

    def get_queryset(self, request):
        return selectors.hospital_list()

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = HospitalOnboardForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            services.hospital_update(hospital=obj, name=form.cleaned_data["name"])
            return
        created = services.hospital_create(
            name=form.cleaned_data["name"], slug=form.cleaned_data["slug"],
            admin_email=form.cleaned_data["admin_email"],
            admin_first_name=form.cleaned_data["admin_first_name"],
            admin_last_name=form.cleaned_data["admin_last_name"])
        obj.pk, obj.schema_name = created.pk, created.schema_name

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # purging is `manage.py purge_hospital`, with confirmation

    @admin.action(description="Suspend the selected hospitals")
    def suspend(self, request, queryset):
        for hospital in queryset:
            services.hospital_suspend(hospital=hospital)

    @admin.action(description="Reactivate the selected hospitals")
    def reactivate(self, request, queryset):
        for hospital in queryset:
            services.hospital_reactivate(hospital=hospital)
