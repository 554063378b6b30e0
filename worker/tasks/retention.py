"""The periodic retention sweep (queue `inference`: index reads, deletes in small transactions)."""

import logging

from celery import shared_task

from inspections import task_names
from inspections.errors import ApplicationError
from inspections.line.services.retention_sweep import retention_sweep
from inspections.models import RetentionTrigger
from worker.task_options import TASK_OPTIONS, task_options

logger = logging.getLogger(__name__)

# No new batch after this: a run ends cleanly (its audit row finished) well before the soft limit.
TIME_BUDGET_S = TASK_OPTIONS[task_names.APPLY_RETENTION]["soft_time_limit"] - 120


@shared_task(**task_options(task_names.APPLY_RETENTION))
def apply_retention() -> dict | None:
    try:
        run = retention_sweep(trigger=RetentionTrigger.SCHEDULE, time_budget_s=TIME_BUDGET_S)
    except ApplicationError as refused:
        logger.info("retention sweep skipped: %s", refused.message)  # another run holds the lock
        return None
    return {"run": run.pk, "images_deleted": run.images_deleted, "bytes_freed": run.bytes_freed,
            "files_failed": run.files_failed, "more_left": run.more_left}
