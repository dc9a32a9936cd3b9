from django.core.management.base import BaseCommand, CommandError

from core.api import ServiceError
from tenants.models import Hospital
from tenants.services import hospital_purge


class Command(BaseCommand):
    help = (
        "Deletes a suspended hospital for good: its schema with all its records, its accounts and domains. "
        "There is no undo, and no API does this."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation (for scripts that already asked).",
        )

    def handle(self, *args, slug, interactive, **options):
        hospital = Hospital.objects.filter(slug=slug).first()
        if hospital is None:
            raise CommandError(f"No hospital with slug '{slug}'.")
        if interactive:
            self.stdout.write(f"This deletes {hospital.name} ({hospital.schema_name}) and every record in it.")
            if input(f"Type the slug ({slug}) to confirm: ").strip() != slug:
                raise CommandError("Not confirmed; nothing was deleted.")
        try:
            hospital_purge(hospital=hospital)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Purged {slug}."))
