"""Is this installation able to work? Database, broker and storage, each answered within a bound.

Each check runs in its own thread and is given ``timeout_s``: a broker or database that does
not answer (a dropped packet, not a refused connection) costs the caller that long and no more.
A check left running finishes or fails on its own client timeout in the background.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections

from inspections.ops.selectors import database_ping

logger = logging.getLogger(__name__)

OK, ERROR, TIMEOUT = "ok", "error", "timeout"


def health_database() -> None:
    try:
        database_ping()
    finally:
        connections.close_all()  # this thread's connections only; the thread ends here


def health_broker(*, broker_url: str | None = None, timeout_s: float = 2.0) -> None:
    from kombu import Connection

    url = broker_url or settings.CELERY_BROKER_URL
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    if url.startswith(("redis://", "rediss://")):
        options.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, max_retries=0)
    with Connection(url, connect_timeout=timeout_s, transport_options=options) as connection:
        # For Redis, opening the channel sends a PING.
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout_s)
        connection.default_channel


def health_storage() -> None:
    """Write, read back and delete a small probe file."""
    name = default_storage.save(f"healthz/probe-{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        with default_storage.open(name, "rb") as probe:
            if probe.read() != b"ok":
                raise OSError("the probe file read back different bytes")
    finally:
        default_storage.delete(name)


class _BoundedCheck:
    """One check running in its own thread; ``result(deadline)`` waits for it at most until then."""

    def __init__(self, name: str, check: Callable[[], None]):
        self.name, self.check = name, check
        self.started = time.monotonic()
        self.error: Exception | None = None
        self.done = False
        # The thread runs in a copy of the caller's context, so its log lines keep the request id.
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run,), name=f"healthz-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.check()
        except Exception as error:  # any failure of the dependency means "not healthy", never a 500
            self.error = error
        self.done = True

    def result(self, deadline: float) -> dict:
        self.thread.join(max(deadline - time.monotonic(), 0))
        duration_ms = round((time.monotonic() - self.started) * 1000)
        if not self.done:
            logger.warning("health check %s did not answer within %d ms", self.name, duration_ms)
            return {"status": TIMEOUT, "duration_ms": duration_ms}
        if self.error is not None:
            logger.warning("health check %s failed: %r", self.name, self.error)
            # The endpoint is public: name the kind of failure, keep hosts and paths for the log.
            return {"status": ERROR, "duration_ms": duration_ms, "error": type(self.error).__name__}
        return {"status": OK, "duration_ms": duration_ms}


def health_report(*, timeout_s: float | None = None) -> dict:
    """``{"status": "ok"|"degraded", "checks": {name: {"status", "duration_ms"[, "error"]}}}``.

    The checks run side by side, so the whole report takes at most ``timeout_s``.
    """
    timeout_s = settings.STEELQC_HEALTH_TIMEOUT_S if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    running = [
        _BoundedCheck("database", health_database),
        _BoundedCheck("broker", partial(health_broker, timeout_s=timeout_s)),
        _BoundedCheck("storage", health_storage),
    ]
    checks = {check.name: check.result(deadline) for check in running}
    healthy = all(check["status"] == OK for check in checks.values())
    return {"status": "ok" if healthy else "degraded", "checks": checks}
