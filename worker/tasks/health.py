"""A health check that proves a worker consumes from the broker and reaches the database."""

import socket

from celery import shared_task

from inspections.selectors import database_ping


@shared_task(name="worker.tasks.health.ping", time_limit=30, soft_time_limit=20, ignore_result=False)
def ping() -> dict:
    return {"hostname": socket.gethostname(), "database": database_ping()}
