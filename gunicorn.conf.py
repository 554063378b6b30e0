"""The one gunicorn configuration: the Dockerfile, docker-compose.yml, `make web` and
`make bench-serve` all start `gunicorn -c gunicorn.conf.py steelqc.wsgi:application`.

Threaded workers (``gthread``): an upload that waits for its prediction (``?wait=``) holds one
thread blocked on a Redis subscription, not a whole process, so a few processes serve many
waiting and non-waiting uploads. Each process admits at most ``STEELQC_API_MAX_WAITERS``
waiting requests at once (the rest get 503 ``too_many_waiters``); ``threads`` leaves room above
that bound for requests that do not wait. Chosen by measurement: see docs/benchmarks.md
(bench-serve). Every value can be overridden from the environment (``GUNICORN_*`` below) or on
the command line.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# One process per core is enough: the CPU work per upload is small and threads overlap the
# waiting (database, Redis, storage). More processes only cost memory.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "24"))
# Clients of an inspection line keep their connection open between uploads.
keepalive = 30
# Longer than the longest ?wait= (STEELQC_API_MAX_WAIT_SECONDS, 30) plus the upload itself.
timeout = 60
graceful_timeout = 30
# Recycle processes now and then (memory held by large multipart bodies), not all at once.
max_requests = 20000
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
