"""Absolute links into a hospital's own frontend, for emails."""

from django.conf import settings


def hospital_link(hospital, path: str) -> str:
    """`FRONTEND_URL` for this hospital (default http://<slug>.<BASE_DOMAIN>:8000) + path."""
    base = settings.FRONTEND_URL.format(slug=hospital.slug, base_domain=settings.BASE_DOMAIN)
    return base.rstrip("/") + "/" + path.lstrip("/")
