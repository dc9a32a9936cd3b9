from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from tenants.models import Hospital


def hospital_list() -> QuerySet[Hospital]:
    """The hospitals (not the platform's own row), by name."""
    return Hospital.objects.exclude(schema_name=get_public_schema_name()).order_by("name", "slug")
