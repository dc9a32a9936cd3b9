"""Gunicorn settings (`python -m gunicorn --config config/gunicorn.py config.wsgi`).

Command-line flags and GUNICORN_CMD_ARGS override anything here, e.g.
GUNICORN_CMD_ARGS="--access-logfile -" for gunicorn's own access log.
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# gunicorn's rule of thumb: requests wait on PostgreSQL as well as on the CPU
# (password hashing is the CPU-heavy part), so about two processes per core.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count() + 1)
# A few threads per process, so one slow request (a slow client, a slow query)
# does not hold a whole process. Each thread keeps its own persistent PostgreSQL
# connection: size max_connections for workers * threads per container.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))

timeout = 30  # a request stuck this long is killed (and its worker replaced)
graceful_timeout = 30  # on SIGTERM, in-flight requests get this long to finish
keepalive = 5  # behind a load balancer that reuses connections
# Recycle processes now and then so slow leaks never build up; the jitter keeps
# them from all restarting at once.
max_requests = 1000
max_requests_jitter = 100

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
