from django.contrib import admin
from django_tenants.admin import TenantAdminMixin

from tenants.models import Domain, Hospital


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Hospital)
class HospitalAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "schema_name", "is_active", "created")
    search_fields = ("name", "slug")
    readonly_fields = ("schema_name", "created")
    inlines = [DomainInline]
