from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        # The Celery app is created with Django's settings in every process, so that publishing a task by
        # name (core.tasks) reaches the configured broker. Here rather than in config/__init__.py: importing
        # config.commands (plain data, for scripts) must not create it, nor choose a settings module.
        from tasks import celery  # noqa: F401
