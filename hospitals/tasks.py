from celery import shared_task
from django_tenants.utils import get_public_schema_name, get_tenant_model, tenant_context

from hospitals.services import break_glass_expired_end


@shared_task
def break_glass_sweep_task() -> int:
    """Ends the expired break-glass grants of every hospital (their access ended on time without this: the
    checks read the deadline; this records the end). Through django-tenants' tenant model: `hospitals` sits
    below `tenants` and does not import it."""
    ended = 0
    for hospital in get_tenant_model().objects.exclude(schema_name=get_public_schema_name()).order_by("pk"):
        with tenant_context(hospital):
            ended += break_glass_expired_end()
    return ended
