"""A health check that proves a worker consumes from the broker and reaches the database."""

import socket

from celery import shared_task

from inspections import task_names
from inspections.ops.selectors import database_ping


@shared_task(name=task_names.HEALTH_PING, time_limit=30, soft_time_limit=20, ignore_result=False)
def ping() -> dict:
    return {"hostname": socket.gethostname(), "database": database_ping()}
