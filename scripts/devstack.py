"""Development supervisor: local PostgreSQL, Redis (+ mail sink, Celery) around Django.

    python scripts/devstack.py run            # db + redis + mail sink + migrate + worker + beat + gunicorn
    python scripts/devstack.py dev            # the same with runserver (autoreload), connections per request
    python scripts/devstack.py test -- -x -k foo   # db + pytest
    python scripts/devstack.py stop           # stop the embedded PostgreSQL and Redis of .run/

A thin command line over devtools (devtools/stack.py says what is started, reused and stopped, and when).
"""

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools import commands, postgres  # noqa: E402
from devtools.processes import StepFailed  # noqa: E402
from devtools.stack import (  # noqa: E402
    BROKER_URL_FILE,
    DATABASE_URL_FILE,
    PGDATA,
    RUN_DIR,
    Interrupted,
    Stack,
    install_signal_handlers,
    say,
    stop_broker,
    stop_database,
)

BEAT_SCHEDULE = RUN_DIR / "celerybeat-schedule"


def start_stack(stack: Stack) -> None:
    """Everything but the web server: servers, migrations, the demo hospital, Celery."""
    stack.ensure_database()
    stack.ensure_broker()
    stack.ensure_mail_sink()
    for name, argv in commands.migrate_steps():
        stack.run_step(name, argv)
    stack.run_step("bootstrap_demo", commands.python("manage.py", "bootstrap_demo"))
    say("starting Celery worker and beat")
    for name, argv in commands.celery_commands(BEAT_SCHEDULE).items():
        stack.spawn(name, argv, stop_signal=signal.SIGTERM, env=commands.django_env())  # SIGTERM: a warm shutdown


def serve(stack: Stack, name: str, argv: list[str], env: dict) -> int:
    """Runs the web server until it or any other child exits."""
    stack.spawn(name, argv, env=env)
    ended, returncode = stack.wait_any()
    if ended == name:
        say(f"{name} exited with code {returncode}")
        return returncode
    # A half stack (no worker, no beat, no broker) is confusing: stop it all.
    say(f"error: {ended} exited unexpectedly with code {returncode}; stopping everything")
    return 128 - returncode if returncode < 0 else returncode or 1  # -N: killed by signal N


def cmd_run(stack: Stack, args) -> int:
    start_stack(stack)
    port = os.environ.get("PORT") or 8000
    env = commands.web_env()
    say(f"starting gunicorn ({env['WEB_CONCURRENCY']} processes) on http://127.0.0.1:{port}/ (Ctrl-C stops everything)")
    return serve(stack, "gunicorn", commands.web_command(port), env)


def cmd_dev(stack: Stack, args) -> int:
    start_stack(stack)
    address = f"127.0.0.1:{os.environ.get('PORT') or 8000}"
    # runserver never closes a request thread's connection: persistent ones would pile up
    # until PostgreSQL refuses clients, so here each request closes its own.
    env = {**commands.django_env(), "DB_CONN_MAX_AGE": "0"}
    say(f"starting runserver (autoreload) on http://{address}/ (Ctrl-C stops everything)")
    return serve(stack, "runserver", commands.runserver_command(address), env)


def cmd_test(stack: Stack, args) -> int:
    # The suite starts its own Redis (it takes the broker away and back) and its own worker.
    stack.ensure_database()
    say("running pytest " + " ".join(args.pytest_args))
    return stack.spawn("pytest", commands.python("-m", "pytest", *args.pytest_args)).wait()


def cmd_stop(stack: Stack, args) -> int:
    if postgres.postmaster_pid(PGDATA) is None:
        say("embedded PostgreSQL is not running")
    else:
        stop_database(PGDATA)
    DATABASE_URL_FILE.unlink(missing_ok=True)
    stop_broker()
    BROKER_URL_FILE.unlink(missing_ok=True)
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="database, Redis, mail sink, migrations, Celery worker and beat, gunicorn").set_defaults(
        func=cmd_run
    )
    sub.add_parser(
        "dev", help="the same as run, with runserver (autoreload) and a connection per request"
    ).set_defaults(func=cmd_dev)
    test = sub.add_parser("test", help="database, then pytest with the arguments after --")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(func=cmd_test)
    sub.add_parser("stop", help="stop the embedded PostgreSQL and Redis of .run/").set_defaults(func=cmd_stop)
    args = parser.parse_args(argv)
    if args.command == "test" and args.pytest_args[:1] == ["--"]:
        args.pytest_args = args.pytest_args[1:]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    try:
        with Stack() as stack:
            try:
                return args.func(stack, args)
            except StepFailed as exc:
                say(f"error: {exc}")
                return exc.returncode
    except Interrupted as exc:
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
