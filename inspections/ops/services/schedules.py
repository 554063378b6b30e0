"""The periodic jobs, as django-celery-beat rows an admin can edit.

They are created once with the intervals from settings and never overwritten afterwards: a
schedule changed in the admin ("Periodic tasks") stays as the admin left it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from inspections import task_names


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: str
    interval_setting: str
    description: str


PERIODIC_JOBS = (
    PeriodicJob("requeue-pending-images", task_names.REQUEUE_PENDING_IMAGES,
                "STEELQC_SWEEP_INTERVAL_S", "Queue again images left pending (lost messages, broker outages)."),
    PeriodicJob("start-training-if-due", task_names.START_TRAINING_IF_DUE,
                "STEELQC_RETRAIN_CHECK_INTERVAL_S",
                "Continuous learning: start a training run when enough new human labels exist."),
    PeriodicJob("fail-stale-training-runs", task_names.FAIL_STALE_TRAINING_RUNS,
                "STEELQC_SWEEP_INTERVAL_S", "Mark running training runs whose worker went silent as failed."),
    PeriodicJob("check-drift", task_names.CHECK_DRIFT, "STEELQC_DRIFT_CHECK_INTERVAL_S",
                "Drift: open or close each source's alert from its foreign share over the drift window."),
    PeriodicJob("rollup-line-stats", task_names.ROLLUP_LINE_STATS, "STEELQC_LINE_ROLLUP_INTERVAL_S",
                "Line counts: merge minutes older than STEELQC_LINE_MINUTES_KEEP_DAYS into hours, hours older "
                "than STEELQC_LINE_HOURS_KEEP_DAYS into days."),
    PeriodicJob("apply-retention", task_names.APPLY_RETENTION, "STEELQC_RETENTION_SWEEP_INTERVAL_S",
                "Retention: delete images (rows and files) older than their source's keep_days that nobody needs."),
    PeriodicJob("clear-expired-sessions", task_names.CLEAR_EXPIRED_SESSIONS, "STEELQC_SESSION_SWEEP_INTERVAL_S",
                "Sessions: delete the login sessions that have expired (Django's clearsessions)."),
)


@transaction.atomic
def periodic_tasks_ensure(*, intervals: dict[str, int] | None = None) -> list[str]:
    """Create the missing periodic jobs; returns the names created. Existing rows are left alone.

    ``intervals`` overrides the settings' seconds per setting name (used by tests and set-up scripts).
    """
    created = []
    for job in PERIODIC_JOBS:
        seconds = (intervals or {}).get(job.interval_setting, getattr(settings, job.interval_setting))
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        _, was_created = PeriodicTask.objects.get_or_create(
            name=job.name,
            defaults={"task": job.task, "interval": interval, "queue": task_names.INFERENCE_QUEUE,
                      "expire_seconds": seconds, "description": job.description},
        )
        if was_created:
            created.append(job.name)
    return created
