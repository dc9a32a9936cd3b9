import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.services import user_create_verified
from tenants.models import Hospital
from tenants.services import hospital_create, hospital_host, platform_ensure

DEMO_SLUG = "demo"
DEMO_ADMIN = ("admin@demo.example", "demo-admin-pass-1")
PLATFORM_ADMIN = ("platform@example.com", "platform-admin-pass-1")


class Command(BaseCommand):
    help = "Ensures the platform domain, a demo hospital and known logins for local use (idempotent)."

    def handle(self, *args, **options):
        platform_ensure()
        if not Hospital.objects.filter(slug=DEMO_SLUG).exists():
            hospital_create(
                name="Demo Hospital",
                slug=DEMO_SLUG,
                admin_email=DEMO_ADMIN[0],
                admin_first_name="Demo",
                admin_last_name="Admin",
                admin_password=DEMO_ADMIN[1],
            )
        if not get_user_model().objects.filter(email=PLATFORM_ADMIN[0], hospital=None).exists():
            user_create_verified(hospital=None, email=PLATFORM_ADMIN[0], password=PLATFORM_ADMIN[1])
        port = os.environ.get("PORT", "8000")  # the port scripts/devstack.py serves on
        self.stdout.write(self.style.SUCCESS("Demo ready:"))
        self.stdout.write(
            f"  hospital admin  http://{hospital_host(DEMO_SLUG)}:{port}/accounts/login/  "
            f"{DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}"
        )
        self.stdout.write(
            f"  platform staff  http://{settings.BASE_DOMAIN}:{port}/accounts/login/  "
            f"{PLATFORM_ADMIN[0]} / {PLATFORM_ADMIN[1]}"
        )
