"""A health check that proves a worker consumes from the broker and reaches the database."""

import socket

from celery import shared_task

from inspections import task_names
from inspections.ops.selectors import database_ping
from worker.task_options import task_options


@shared_task(**task_options(task_names.HEALTH_PING))
def ping() -> dict:
    return {"hostname": socket.gethostname(), "database": database_ping()}
