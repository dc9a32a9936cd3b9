"""The tenant-aware Celery app and the email tasks (arriving with the email-delivery issue)."""
