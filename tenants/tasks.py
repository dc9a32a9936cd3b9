from celery import shared_task

from tenants.provisioning import spare_pool_refill


@shared_task
def spare_pool_refill_task() -> int:
    """Tops the pool of spare schemas up after an onboarding claimed one (tenants.services.hospital_create)."""
    return spare_pool_refill()
