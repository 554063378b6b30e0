"""The periodic drift check (queue `inference`: a few aggregate queries)."""

from celery import shared_task

from inspections import task_names
from inspections.line.services.drift import drift_alerts_check
from worker.task_options import task_options


@shared_task(**task_options(task_names.CHECK_DRIFT))
def check_drift() -> dict:
    changes = drift_alerts_check()
    return {"opened": [alert.source for alert in changes.opened], "closed": [alert.source for alert in changes.closed]}
