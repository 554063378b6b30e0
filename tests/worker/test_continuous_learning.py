"""Continuous learning end to end: a real `celery beat` process fires the retraining check
from its django-celery-beat row, the real worker runs it, and a training run starts only once
enough new reviewed labels exist."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import InspectionImage, TrainingRun, TrainingRunStatus, TrainingRunTrigger
from inspections.ops.services.schedules import periodic_tasks_ensure
from inspections.registry.services.training import training_run_cancel
from inspections.review.services.reviews import review_submit
from tests.conftest import ROOT, WorkerProcess, _worker_env, wait_for
from tests.data import tiny_dataset
from tests.factories import UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHECK_EVERY_S = 2


class BeatProcess(WorkerProcess):
    """`celery beat` with the database scheduler, as the compose `beat` service runs it. Only its
    start differs from the worker's: it is stopped (and killed) like the worker, as a process group."""

    def __init__(self, *, env: dict[str, str], log_path):
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "steelqc", "beat", "--loglevel", "INFO",
             "--schedule", str(self.log_path.with_suffix(".schedule"))],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(lambda: self.process.poll() is not None or "beat: Starting" in self.log(), timeout=timeout)
        assert self.process.poll() is None, f"celery beat exited early:\n{self.log()}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def beat(transactional_db, celery_worker, session_media_root, tmp_path):
    # Only the retraining check runs often here; the sweepers keep their hour.
    periodic_tasks_ensure(intervals={"STEELQC_RETRAIN_CHECK_INTERVAL_S": CHECK_EVERY_S,
                                     "STEELQC_SWEEP_INTERVAL_S": 3600})
    process = BeatProcess(env=_worker_env(session_media_root), log_path=tmp_path / "beat.log")
    process.start()
    yield process
    process.stop()


def _worker_log(worker) -> str:
    return worker.log_path.read_text(errors="replace")


def test_beat_starts_a_training_run_once_enough_new_labels_are_reviewed(celery_worker, beat, tmp_path, settings):
    needed = settings.STEELQC_RETRAIN_MIN_NEW_LABELS  # the worker has the same environment, so the same number
    # Enough images for both classes to be ready to train (20 training and 5 test images each by
    # default, so 32 a class as the split shares them out); only `needed` of them get reviewed.
    per_class = max(needed // 2 + 1, 32)
    tiny_dataset(tmp_path / "data", per_class=per_class)
    dataset_import_folder(root=tmp_path / "data", source="test")
    reviewer = UserFactory(roles=["qa"])
    images = list(InspectionImage.objects.order_by("id")[:needed])
    for image in images[:-1]:
        review_submit(image=image, label_name=image.label.name, reviewer=reviewer)

    # Beat fires the check and the worker finds one label too few.
    start = len(_worker_log(celery_worker))
    wait_for(lambda: f"{needed - 1} new reviewed labels, {needed} needed; no run" in _worker_log(celery_worker)[start:],
             timeout=60)
    assert not TrainingRun.objects.exists()

    review_submit(image=images[-1], label_name=images[-1].label.name, reviewer=reviewer)
    run = wait_for(lambda: TrainingRun.objects.first(), timeout=60)
    assert run.trigger == TrainingRunTrigger.SCHEDULE and run.requested_by is None
    assert run.snapshot.image_count == 2 * per_class
    assert "Sending due task start-training-if-due" in beat.log()

    beat.stop()  # a cancelled run leaves the labels new: the next check would start another
    assert TrainingRun.objects.count() == 1
    training_run_cancel(run=run)
    wait_for(lambda: TrainingRun.objects.filter(pk=run.pk, status=TrainingRunStatus.CANCELLED).exists(), timeout=120)
