"""The Celery app (`tasks.celery.app`); tasks themselves live in each app's tasks.py."""

from tasks.celery import app as celery_app

__all__ = ["celery_app"]
