from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tenants.provisioning import DEFAULT_POOL_SIZE, spare_pool_refill


class Command(BaseCommand):
    help = (
        "Creates spare schemas (migrated ahead of time, claimed by onboarding) until the pool is full; "
        "migrates or drops stale ones."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--size",
            type=int,
            default=None,
            help="Spares to keep (default: SPARE_SCHEMA_POOL_SIZE, "
            f"now {getattr(settings, 'SPARE_SCHEMA_POOL_SIZE', DEFAULT_POOL_SIZE)}).",
        )

    def handle(self, *args, **options):
        if options["size"] is not None and options["size"] < 0:
            raise CommandError("--size cannot be negative.")
        created = spare_pool_refill(size=options["size"])
        self.stdout.write(self.style.SUCCESS(f"Created {created} spare schema(s)."))
