"""Access tasks: the periodic sweep of expired login sessions."""

from celery import shared_task

from inspections import task_names
from inspections.access.services.sessions import sessions_clear_expired
from worker.task_options import task_options


@shared_task(**task_options(task_names.CLEAR_EXPIRED_SESSIONS))
def clear_expired_sessions() -> int:
    return sessions_clear_expired()
