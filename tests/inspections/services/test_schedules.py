import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from inspections.ops.services.schedules import PERIODIC_JOBS, periodic_tasks_ensure

pytestmark = pytest.mark.django_db


def test_missing_jobs_are_created_with_the_configured_intervals(settings):
    settings.STEELQC_SWEEP_INTERVAL_S = 45
    assert sorted(periodic_tasks_ensure()) == sorted(job.name for job in PERIODIC_JOBS)
    sweeper = PeriodicTask.objects.get(name="requeue-pending-images")
    assert (sweeper.task, sweeper.queue, sweeper.interval.every) == (
        "worker.tasks.inference.requeue_pending_images", "inference", 45,
    )
    assert sweeper.enabled


def test_an_interval_changed_in_the_admin_is_kept(capsys):
    periodic_tasks_ensure()
    job = PeriodicTask.objects.get(name="start-training-if-due")
    job.interval = IntervalSchedule.objects.create(every=600, period=IntervalSchedule.SECONDS)
    job.enabled = False
    job.save()
    call_command("ensure_periodic_tasks")
    job.refresh_from_db()
    assert (job.interval.every, job.enabled) == (600, False)
    assert "start-training-if-due: kept as configured" in capsys.readouterr().out
