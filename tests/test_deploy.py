"""Production deployment: docker/compose.yaml, docker/.env.example, config/gunicorn.py, the production settings.

No Docker engine runs here, so the files are checked against the code they
name: the commands exist and are those of config/commands.py, every variable
is one the settings read, the production settings refuse to start without
their secrets and pass `check --deploy`, and gunicorn serves the collected
static files with them.
"""

import json
import multiprocessing
import os
import re
import runpy
import secrets
import shlex
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import requests
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.core.management import get_commands
from django.db import connections
from gunicorn.config import Config

from config import commands
from tests.conftest import database_url_of
from tests.processes import Gunicorn
from tests.support import ANSWER_TIMEOUT

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
APP_SERVICES = ("migrate", "web", "worker", "worker-maintenance", "beat")
# Variables of docker/.env.example read by something other than our code.
NOT_OURS = {"POSTGRES_PASSWORD": "the postgres image"}
# Read by the settings, yet meaningless in production (production.py fixes their value).
NOT_IN_PRODUCTION = {"DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS", "JWT_AUTH_SECURE", "SSO_ALLOW_HTTP_ISSUERS"}
_ENV_READ = re.compile(r"""(?:env(?:\.\w+)?\(|os\.environ(?:\.get)?[(\[]|environ\.get\()\s*["']([A-Z][A-Z0-9_]*)["']""")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def env_example(*, commented: bool = False) -> dict[str, str]:
    """docker/.env.example as name -> value; with `commented`, the optional (commented-out) ones too."""
    pattern = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
    found = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        match = pattern.match(line)
        if match and (commented or not match[1]):
            found[match[2]] = match[3].split("  #")[0].strip()
    return found


def read_by_config() -> set[str]:
    return {name for path in (REPO / "config").rglob("*.py") for name in _ENV_READ.findall(path.read_text())}


def argv(service: dict) -> list[list[str]]:
    """A service's command as argument lists, one per `&&`-joined step of a `sh -c`."""
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(step) for step in command[2].split("&&")]
    return [command]


def production_env(**overrides) -> dict[str, str]:
    """A realistic production environment: .env.example, with a real secret key."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        **env_example(),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    }
    return {**env, **overrides}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


# --- compose.yaml runs the commands of config/commands.py ------------------------------------------


def test_compose_services_run_the_stacks_commands(compose):
    services = compose["services"]
    assert argv(services["migrate"]) == [["python", *step] for step in commands.MIGRATE]
    assert argv(services["web"]) == [["python", *commands.WEB]]
    assert argv(services["worker"]) == [["python", *commands.CELERY_WORKER_EMAIL]]
    assert argv(services["worker-maintenance"]) == [["python", *commands.CELERY_WORKER_MAINTENANCE]]
    assert argv(services["beat"]) == [["python", *commands.celery_beat("/tmp/celerybeat-schedule")]]
    for name in ("web", "worker", "worker-maintenance", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["web"]["healthcheck"]["test"][-1].count("/healthz") == 1


def test_the_migrate_steps_run_idempotently(django_db_setup):
    """What the one-shot `migrate` service (and `make run`) runs, on the already migrated test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_of(connections["default"].settings_dict),
    }
    for step in commands.MIGRATE:
        result = run(list(step), env)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_manage_py_subcommand_exists(compose):
    lines = [shlex.join(step) for name in APP_SERVICES for step in argv(compose["services"][name])]
    lines += (DOCKER / "Dockerfile").read_text().splitlines()
    used = {re.search(r"manage\.py\s+(\S+)", line)[1] for line in lines if "manage.py" in line}
    assert {"migrate_schemas", "ensure_platform", "collectstatic"} <= used
    assert used - set(get_commands()) == set(), "unknown manage.py subcommands"


def test_the_celery_app_path_imports(compose):
    for name in ("worker", "worker-maintenance", "beat"):
        command = compose["services"][name]["command"]
        assert isinstance(find_app(command[command.index("-A") + 1]), Celery)


def test_every_task_goes_to_a_queue_that_compose_and_make_run_consume(compose):
    from tasks.celery import app

    app.loader.import_default_modules()
    ours = [name for name in app.tasks if name.split(".")[0] in ("emails", "tenants", "hospitals", "accounts")]
    assert "emails.tasks.email_send_task" in ours and "tenants.tasks.spare_pool_refill_task" in ours
    queues = {name: app.amqp.router.route({}, name)["queue"].name for name in ours}
    assert queues["emails.tasks.email_send_task"] == "email"
    assert queues["tenants.tasks.spare_pool_refill_task"] == "maintenance"

    def consumed(argv: list[str]) -> set[str]:
        return set(argv[argv.index("--queues") + 1].split(","))

    compose_queues = set().union(
        *(consumed(compose["services"][name]["command"]) for name in ("worker", "worker-maintenance"))
    )
    assert set(queues.values()) <= compose_queues
    assert set(queues.values()) <= consumed(list(commands.CELERY_WORKER))


def gunicorn_config(**environ) -> Config:
    """config/gunicorn.py loaded the way gunicorn loads it: every value through gunicorn's own validators."""
    with mock.patch.dict(os.environ, environ):
        for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS"):
            if name not in environ:
                os.environ.pop(name, None)
        values = runpy.run_path(str(REPO / commands.WEB[commands.WEB.index("--config") + 1]))
    config = Config()
    for name, value in values.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_gunicorn_config_loads():
    default = gunicorn_config()
    assert default.workers == multiprocessing.cpu_count()  # one per core, chosen by make bench-gunicorn
    assert (default.worker_class_str, default.threads) == ("gthread", 4)
    assert default.bind == ["0.0.0.0:8000"]
    assert default.accesslog is None  # Django logs each request (config/logs.py)
    assert default.max_requests and default.max_requests_jitter
    assert 0 < default.graceful_timeout <= default.timeout
    assert default.control_socket_disable
    custom = gunicorn_config(PORT="9001", WEB_CONCURRENCY="3", GUNICORN_THREADS="4")
    assert (custom.bind, custom.workers, custom.threads) == (["0.0.0.0:9001"], 3, 4)


# --- Variables ---------------------------------------------------------------------------------------


def test_every_variable_of_compose_and_env_example_is_read_by_the_settings(compose):
    referenced = set(env_example(commented=True))
    for name in APP_SERVICES:
        referenced |= set(compose["services"][name].get("environment") or {})
    referenced |= set(re.findall(r"\$\{([A-Z0-9_]+)", (DOCKER / "compose.yaml").read_text()))
    assert referenced - read_by_config() - set(NOT_OURS) == set()
    assert compose["services"]["web"]["env_file"] == ".env"


def test_env_example_lists_every_variable_the_settings_read():
    assert read_by_config() - set(env_example(commented=True)) - NOT_IN_PRODUCTION == set()


def test_production_settings_refuse_to_start_without_their_variables():
    result = run(["-c", "import config.settings.production"], {"PATH": os.environ["PATH"]})
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("django.core.exceptions.ImproperlyConfigured: Production settings need")
    missing = re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", message.split(":", 1)[1])
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "BASE_DOMAIN"} <= set(missing)
    assert set(missing) <= set(env_example())  # each one is in .env.example, uncommented
    # One missing is enough, and it is named.
    result = run(["-c", "import config.settings.production"], production_env(BASE_DOMAIN=""))
    assert "need these environment variables: BASE_DOMAIN (" in result.stderr


def test_check_deploy_has_nothing_to_say():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"], production_env())
    assert result.returncode == 0, result.stderr
    # The one silenced check is auth.W004 (a hospital is a realm: config/settings/base.py).
    assert result.stdout.strip() == "System check identified no issues (1 silenced).", result.stdout
    assert "WARNING" not in result.stderr and "Warning" not in result.stderr, result.stderr


def test_production_hosts_are_the_platform_and_its_subdomains():
    code = "from django.conf import settings; print(settings.ALLOWED_HOSTS, settings.CSRF_TRUSTED_ORIGINS)"
    env = production_env(
        BASE_DOMAIN="example.com", FRONTEND_URL="https://{slug}.app.example.com:443", DJANGO_ALLOWED_HOSTS="*"
    )
    result = run(["-c", f"import django; django.setup(); {code}"], env)
    assert result.stdout.strip() == "['example.com', '.example.com'] ['https://*.app.example.com']", result.stderr


# --- gunicorn with the production settings serves the collected static files -----------------------


@pytest.fixture(scope="module")
def production_server(django_db_setup, broker, tmp_path_factory):
    """gunicorn as in the image: production settings, static files collected beforehand, on the test database."""
    static_root = tmp_path_factory.mktemp("static")
    env = production_env(
        DATABASE_URL=database_url_of(connections["default"].settings_dict),
        CELERY_BROKER_URL=broker.url,
        BASE_DOMAIN="localhost",
        DJANGO_STATIC_ROOT=str(static_root),
        WEB_CONCURRENCY="1",
    )
    collected = run(["manage.py", "collectstatic", "--noinput"], env)
    assert collected.returncode == 0, collected.stderr
    server = Gunicorn(env=env)
    try:
        server.start()
    except RuntimeError:
        pytest.fail(server.log.read_text()[-3000:])
    yield server, json.loads((static_root / "staticfiles.json").read_text())["paths"]
    server.stop()


def test_gunicorn_serves_the_admin_css_compressed_and_cached_for_ever(production_server):
    server, manifest = production_server
    url = f"{server.url}/static/{manifest['admin/css/base.css']}"
    behind_proxy = {"Host": "localhost", "X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"}
    response = requests.get(url, headers=behind_proxy, timeout=ANSWER_TIMEOUT)
    assert response.status_code == 200, server.log.read_text()[-2000:]
    assert response.headers["Content-Type"].startswith("text/css")
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    assert "body" in response.text
    # Plain HTTP (no proxy saying otherwise) is sent to HTTPS.
    plain = requests.get(url, headers={"Host": "localhost"}, timeout=ANSWER_TIMEOUT, allow_redirects=False)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://localhost/")
