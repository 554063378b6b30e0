"""The periodic job apply-retention: its beat row, its time limits, and the real worker process
running it through the broker against the real database and the same media folder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from inspections import task_names
from inspections.models import DefectClass, ImageStatus, InspectionImage, LabelSource, RetentionPolicy, RetentionRun
from inspections.ops.services.schedules import periodic_tasks_ensure
from steelqc.celery import app
from tests.conftest import wait_for
from tests.factories import InspectionImageFactory, PredictionFactory


def test_the_task_is_registered_and_stops_taking_batches_before_its_soft_limit():
    from worker.tasks.retention import TIME_BUDGET_S, apply_retention

    app.loader.import_default_modules()
    task = app.tasks[task_names.APPLY_RETENTION]
    assert task.name == apply_retention.name == "worker.tasks.retention.apply_retention"
    assert TIME_BUDGET_S < task.soft_time_limit < task.time_limit


@pytest.mark.django_db
def test_the_periodic_job_is_created_with_the_configured_interval(settings):
    settings.STEELQC_RETENTION_SWEEP_INTERVAL_S = 7200
    periodic_tasks_ensure()
    job = PeriodicTask.objects.get(name="apply-retention")
    assert (job.task, job.queue, job.interval.every, job.enabled) == (task_names.APPLY_RETENTION, "inference", 7200,
                                                                      True)


def _old_image(*, labelled: bool) -> InspectionImage:
    image = InspectionImageFactory(source="line-w", status=ImageStatus.PREDICTED)
    PredictionFactory(image=image)
    fields = {"created_at": timezone.now() - timedelta(days=4000)}  # past the policy's keep_days
    if labelled:
        fields.update(label=DefectClass.objects.get_or_create(name="crazing")[0], label_source=LabelSource.IMPORT)
    InspectionImage.objects.filter(pk=image.pk).update(**fields)
    return image


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_deletes_what_nobody_needs_and_records_the_run(celery_worker):
    # Deleting is opt-in (the settings' default keeps for ever): the default policy row opts in.
    RetentionPolicy.objects.update_or_create(source="", defaults={"keep_days": 30})
    unneeded, labelled = _old_image(labelled=False), _old_image(labelled=True)
    app.send_task(task_names.APPLY_RETENTION)
    run = wait_for(lambda: RetentionRun.objects.filter(finished_at__isnull=False).first(), timeout=60)
    assert (run.trigger, run.dry_run, run.error, run.images_deleted, run.files_deleted) == (
        "schedule", False, "", 1, 1)
    assert not InspectionImage.objects.filter(pk=unneeded.pk).exists()
    assert not default_storage.exists(unneeded.file.name)
    assert InspectionImage.objects.filter(pk=labelled.pk).exists() and default_storage.exists(labelled.file.name)
