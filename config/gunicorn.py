"""Gunicorn settings (`python -m gunicorn --config config/gunicorn.py config.wsgi`).

Command-line flags and GUNICORN_CMD_ARGS override anything here, e.g.
GUNICORN_CMD_ARGS="--access-logfile -" for gunicorn's own access log.
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Chosen by measurement (`make bench-gunicorn`, README "Benchmarks"). Requests are CPU-bound Python with one
# short SQL statement, so one process per core. On a loaded 2-core machine gthread won (2 x 4 threads 868
# req/s, 2 sync workers 223: a sync worker closes every connection); on a quiet one it ties 2 sync workers
# (0.99x over 9 head-to-head rounds). Threads keep clients' connections alive and a slow client holds a
# thread, not the process. Each thread keeps its own persistent PostgreSQL connection: size max_connections
# for workers * threads per container.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

timeout = 30  # a request stuck this long is killed (and its worker replaced)
graceful_timeout = 30  # on SIGTERM, in-flight requests get this long to finish
keepalive = 5  # behind a load balancer that reuses connections
# Recycle processes now and then so slow leaks never build up; the jitter keeps them from all restarting at
# once. Rarely: a restart costs a Django start-up (~1 s of CPU), and at 1,000 requests the old setting
# restarted a worker every few seconds under load, slower than 2 plain sync workers (issue 13).
max_requests = 100_000
max_requests_jitter = 10_000

# The heartbeat file on a memory filesystem: on a disk-backed /tmp (container
# overlays) fchmod can stall a worker until the arbiter kills it.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No control socket: it would be created under $HOME, which the image's user
# cannot write, and nothing here uses gunicornc.
control_socket_disable = True

# Django logs every request itself (JSON, with its request id); gunicorn's
# access log would print each one twice. Errors go to stderr.
accesslog = None
errorlog = "-"
