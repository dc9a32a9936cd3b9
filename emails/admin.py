from django.contrib import admin

from emails.models import Email


@admin.register(Email)
class EmailAdmin(admin.ModelAdmin):
    list_display = ("created", "kind", "to", "hospital", "status", "attempts", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("to",)
    readonly_fields = [field.name for field in Email._meta.fields]

    # The outbox is the record of what was sent: rows come from emails.services only, and stay.
    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
