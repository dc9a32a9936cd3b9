from django.contrib import admin

from emails.models import Email


@admin.register(Email)
class EmailAdmin(admin.ModelAdmin):
    list_display = ("created", "kind", "to", "hospital", "status", "attempts", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("to",)
    readonly_fields = [field.name for field in Email._meta.fields]
