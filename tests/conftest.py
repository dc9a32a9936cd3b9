"""One test database, two hospitals and one live HTTP server for the whole session.

Tests talk to the app as its users do: real HTTP on a socket, with the
hospital's host name in the Host header, against real PostgreSQL schemas,
with mail going over SMTP into a sink. Nothing is rolled back between tests,
so each test makes its own uniquely named users.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.cache import caches
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.signals import setting_changed
from django.db import connections
from django.test.utils import setup_databases, teardown_databases

from accounts.services import user_create_verified
from config.env import cache_url
from tenants.services import hospital_create, hospital_host, platform_ensure
from tests.processes import CeleryWorker, RedisBroker
from tests.support import PASSWORD, Api, start_mail_sink, unique_email

# The tiers (pyproject.toml markers; `make test` runs each in turn): "fast" is tests/fast/ (services in rollback
# transactions), "system" these modules (load, fuzz, faults, deployment, the run command, browsers), "http" the rest.
SYSTEM_MODULES = {
    "test_load",
    "test_fuzz",
    "test_faults",
    "test_deploy",
    "test_make_run",
    "test_devtools",
    "test_multihost",
    "test_admin_browser",
    "test_sso_browser",
}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "fast" in item.path.parts:
            item.add_marker("fast")
        elif item.path.stem in SYSTEM_MODULES:
            item.add_marker("system")
        else:
            item.add_marker("http")


def database_url_of(settings_dict: dict) -> str:
    """The URL of the test database, for processes that are not this one."""
    host = settings_dict["HOST"] or settings_dict["OPTIONS"].get("host", "")
    netloc = quote(settings_dict["USER"] or "", safe="")
    if settings_dict["PASSWORD"]:
        netloc += ":" + quote(settings_dict["PASSWORD"], safe="")
    if host.startswith("/"):  # a unix socket directory
        return f"postgresql://{netloc}@/{settings_dict['NAME']}?host={quote(host)}"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgresql://{netloc}@{host}{port}/{settings_dict['NAME']}"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _LiveServer(ThreadedWSGIServer):
    # socketserver's listen backlog is 5 (Django's 10): a burst of 30 parallel clients
    # would meet connection resets, as it never would with gunicorn (backlog 2048).
    request_queue_size = 128


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    """A fresh test database, fully migrated (public schema), with the platform domain.

    pytest-django's own fixture only creates databases for tests marked
    django_db, and those run inside transactions a live server cannot see.
    """
    # A DJANGO_SETTINGS_MODULE inherited from the environment would win over pyproject.toml's.
    assert settings.SETTINGS_MODULE == "config.settings.test", f"the suite runs on {settings.SETTINGS_MODULE}"
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=request.config.option.verbose, interactive=False, aliases={"default"})
        platform_ensure()
    yield
    with django_db_blocker.unblock():
        # The live server's request threads are daemons; end any session they left open.
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connections.close_all()
        teardown_databases(config, verbosity=request.config.option.verbose)


@pytest.fixture(scope="session", autouse=True)
def db_access(django_db_setup, django_db_blocker):
    """The suite works like a client of a running system: the database is always reachable."""
    django_db_blocker.unblock()
    yield
    django_db_blocker.restore()


@pytest.fixture(scope="session")
def mail_sink():
    sink = start_mail_sink()
    # Django's test setup swaps in the in-memory backend; tests use real SMTP.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    yield sink
    sink.close()


@pytest.fixture(scope="session", autouse=True)
def broker():
    """A private Redis: the suite takes it away and brings it back, so it never uses a shared one."""
    broker = RedisBroker()
    broker.start()
    # Celery reads CELERY_BROKER_URL from the environment before any setting.
    os.environ["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL = broker.url
    # The throttles' cache is that Redis too (its own db number), never a developer's one.
    settings.CACHES["default"]["LOCATION"] = cache_url(broker.url)
    setting_changed.send(sender=None, setting="CACHES", value=settings.CACHES, enter=True)  # reconnects
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, broker, mail_sink):
    """A real worker (with beat) in another process, on the test database."""
    worker = CeleryWorker(
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url_of(connections["default"].settings_dict),
            "CELERY_BROKER_URL": broker.url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(mail_sink.port),
            "LOG_FORMAT": "json",  # tests/test_logging.py reads its output
        }
    )
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def server_url(db_access, mail_sink, celery_worker) -> str:
    server = _LiveServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=False)
    server.set_app(StaticFilesHandler(WSGIHandler()))  # the admin's CSS and JS too, as runserver serves them
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _make_hospital(slug: str):
    return hospital_create(
        name=f"{slug.title()} General", slug=slug, admin_email=unique_email("admin"), admin_password=PASSWORD
    )


@pytest.fixture(scope="session")
def hospital_a(db_access):
    return _make_hospital("alpha")


@pytest.fixture(scope="session")
def hospital_b(db_access):
    return _make_hospital("beta")


@pytest.fixture
def api_for(server_url):
    """api_for(hospital) or api_for(None) (the platform domain): a fresh client."""

    def make(hospital=None, host: str | None = None) -> Api:
        if host is None:
            host = settings.BASE_DOMAIN if hospital is None else hospital_host(hospital.slug)
        return Api(server_url, host)

    return make


@pytest.fixture
def api_a(api_for, hospital_a) -> Api:
    return api_for(hospital_a)


@pytest.fixture
def api_b(api_for, hospital_b) -> Api:
    return api_for(hospital_b)


@pytest.fixture
def user_a(hospital_a):
    """A verified staff account of hospital A (password: PASSWORD)."""
    return user_create_verified(
        hospital=hospital_a, email=unique_email("a"), password=PASSWORD, first_name="Ann", last_name="Alpha"
    )


@pytest.fixture
def user_b(hospital_b):
    return user_create_verified(
        hospital=hospital_b, email=unique_email("b"), password=PASSWORD, first_name="Ben", last_name="Beta"
    )


@pytest.fixture
def platform_user(db_access):
    return user_create_verified(hospital=None, email=unique_email("staff"), password=PASSWORD)


@pytest.fixture
def platform_api(api_for, platform_user) -> Api:
    """A client of the platform domain, logged in as platform staff."""
    api = api_for(None)
    api.login(platform_user.email)
    return api


@pytest.fixture
def fresh_limits(settings):
    """Throttle counters from zero, and generous rates unless a test lowers one."""
    caches["default"].clear()  # the cache's own Redis db, not the broker's
    settings.THROTTLE_RATES = {
        "registration": "1000/hour",
        "password_reset": "1000/hour",
        "invitation_accept": "1000/hour",
        "email": "1000/hour",
    }
    return settings.THROTTLE_RATES
