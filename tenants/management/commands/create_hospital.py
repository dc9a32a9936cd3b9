from django.core.management.base import BaseCommand, CommandError

from core.api import ServiceError
from tenants.services import hospital_create, hospital_host


class Command(BaseCommand):
    help = "Creates a hospital: its schema, its domain <slug>.BASE_DOMAIN and its admin account."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-first-name", default="")
        parser.add_argument("--admin-last-name", default="")
        parser.add_argument(
            "--admin-password", default=None, help="Local demo data only: skip the invitation and set this password."
        )

    def handle(self, *args, **options):
        try:
            hospital = hospital_create(
                name=options["name"],
                slug=options["slug"],
                admin_email=options["admin_email"],
                admin_first_name=options["admin_first_name"],
                admin_last_name=options["admin_last_name"],
                admin_password=options["admin_password"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        host = hospital_host(hospital.slug)
        self.stdout.write(
            self.style.SUCCESS(f"Created {hospital.name}: schema {hospital.schema_name}, served on {host}.")
        )
        if options["admin_password"] is None:
            self.stdout.write(f"{options['admin_email']} was emailed an invitation to {host}.")
