"""Request ids and log lines: one id per request, in its response header, in every log record
it causes, and in the Celery tasks it queues (and in those tasks' log records in the worker).

Wiring: ``RequestIdMiddleware`` first in ``MIDDLEWARE``; ``logging_config()`` builds ``LOGGING``
(``STEELQC_LOG_FORMAT``); ``celery_signals_connect()`` is called from ``steelqc/celery.py``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
import uuid
from datetime import datetime, timezone

from django.core.signals import request_finished

REQUEST_ID_HEADER = "X-Request-ID"
# The task message header that carries the id from the web process to the worker.
TASK_HEADER = "request_id"
# An incoming id is reused only when it is short and plain: it ends up in log lines and headers.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("steelqc_request_id", default=None)


def request_id_get() -> str | None:
    return _request_id.get()


def request_id_set(value: str | None) -> None:
    _request_id.set(value)


def request_id_from_header(value: str | None) -> str:
    """The client's id when it is sane, else a fresh one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Picks the request id and puts it in the response header and the logging context.

    The context is cleared on ``request_finished`` rather than here, so Django's own
    ``django.request`` log lines (written after the middleware returns) still carry the id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        request_id_set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def _request_finished(**kwargs) -> None:
    request_id_set(None)


request_finished.connect(_request_finished, dispatch_uid="steelqc.observability.request_finished")


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request or task) for the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (+ exc_info)."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or request_id_get()
        line = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id in (None, "-") else request_id,
            "process": record.process,
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def logging_config(*, log_format: str, level: str) -> dict:
    """``LOGGING`` for settings: ``plain`` text or ``json`` lines, both with the request id."""
    # With JSON lines, Python warnings go through logging too: a collector sees nothing but JSON.
    logging.captureWarnings(log_format == "json")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "steelqc.observability.RequestIdFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
            "json": {"()": "steelqc.observability.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default config gives "django" its own console handler (with DEBUG on): every
            # request warning would be written twice, once plain, once here. One handler: the root's.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            # django-axes announces its configuration ("AXES: BEGIN ...") at INFO on every start,
            # each manage.py command included; nothing there to act on. Its lockouts and errors are
            # logged by its other modules, which keep the configured level.
            "axes.apps": {"level": "WARNING"},
        },
    }


# --- Celery ----------------------------------------------------------------------------------

def _stamp_published_task(headers=None, **kwargs) -> None:
    request_id = request_id_get()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


def task_request_id(task) -> str | None:
    """The id a running task was queued with (custom headers land in ``request.headers``)."""
    request = getattr(task, "request", None)
    headers = getattr(request, "headers", None) or {}
    return headers.get(TASK_HEADER) or getattr(request, TASK_HEADER, None)


# What the id was before each running task, restored after it (a task run eagerly inside a
# request must not wipe the request's id).
_before_task: dict[str, str | None] = {}


def _task_started(task_id=None, task=None, **kwargs) -> None:
    _before_task[task_id] = request_id_get()
    request_id_set(task_request_id(task) if task is not None else None)


def _task_finished(task_id=None, **kwargs) -> None:
    request_id_set(_before_task.pop(task_id, None))


def _worker_logging(**kwargs) -> None:
    # Connecting ``setup_logging`` stops Celery from installing its own handlers: the worker
    # then logs exactly like the web process (format, request id).
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def celery_signals_connect() -> None:
    from celery import signals

    signals.before_task_publish.connect(_stamp_published_task, dispatch_uid="steelqc.observability.publish", weak=False)
    signals.task_prerun.connect(_task_started, dispatch_uid="steelqc.observability.prerun", weak=False)
    signals.task_postrun.connect(_task_finished, dispatch_uid="steelqc.observability.postrun", weak=False)
    signals.setup_logging.connect(_worker_logging, dispatch_uid="steelqc.observability.logging", weak=False)
