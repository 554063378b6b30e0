"""The periodic drift check (queue `inference`: a few aggregate queries)."""

from celery import shared_task

from inspections import task_names
from inspections.line.services.drift import drift_alerts_check


@shared_task(name=task_names.CHECK_DRIFT, time_limit=120, soft_time_limit=100, ignore_result=True)
def check_drift() -> dict:
    changes = drift_alerts_check()
    return {"opened": [alert.source for alert in changes.opened], "closed": [alert.source for alert in changes.closed]}
