# The Celery app is created with Django's settings in every process, so that publishing a task by
# name (core.tasks) reaches the configured broker. (cookiecutter-django's config/__init__.py)
from tasks.celery import app as celery_app

__all__ = ("celery_app",)
