"""The one Celery app, configured from Django settings under the CELERY_ namespace.

Tasks take ids and plain strings and enter a hospital explicitly with
`tenant_context`, so they never depend on the schema the sender happened to be in.
"""

import os

from celery import Celery

import tasks.logs  # noqa: F401  (connects the task log lines and the worker's logging setup)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("hospital")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
