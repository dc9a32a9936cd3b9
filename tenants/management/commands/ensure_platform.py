from django.conf import settings
from django.core.management.base import BaseCommand

from tenants.services import platform_ensure


class Command(BaseCommand):
    help = "Ensures the platform's own row (the public schema) and its domain BASE_DOMAIN (idempotent)."

    def handle(self, *args, **options):
        platform_ensure()
        self.stdout.write(self.style.SUCCESS(f"The platform answers on {settings.BASE_DOMAIN}."))
