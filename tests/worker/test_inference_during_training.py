"""Inference never waits for training: an upload's ?wait is answered while the real training
worker is busy with a run, because the two queues are served by separate processes."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.catalog.services.images import image_upload
from inspections.models import ModelVersion, Prediction, TrainingRun, TrainingRunStatus
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.registry.services.training import training_run_cancel, training_run_start
from tests.conftest import TINY_TRAINING_PARAMS, wait_for
from tests.data import tiny_dataset
from tests.factories import image_bytes
from tests.inspections.api.conftest import client_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Long enough that it is still training when the upload is answered; cancelled when the test ends.
LONG_RUN = {**TINY_TRAINING_PARAMS, "head_epochs": 1000, "head_patience": 1000, "augmented_views": 6}


@pytest.fixture
def active_version(celery_worker, tiny_model_dirs) -> ModelVersion:
    """The tiny model, promoted and already loaded by the inference worker (what is measured is
    the wait behind a training run, not a cold model load)."""
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    warm = image_upload(content=image_bytes(seed=6100, size=(40, 40)), filename="warm.png", uploaded_by=None).image
    wait_for(lambda: Prediction.objects.filter(image=warm).exists())
    return version


@pytest.fixture
def running_training_run(active_version, tmp_path) -> TrainingRun:
    tiny_dataset(tmp_path / "data", per_class=40)  # enough for each class to be ready to train
    dataset_import_folder(root=tmp_path / "data", source="test")
    run = training_run_start(requested_by=None, params=LONG_RUN)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == TrainingRunStatus.RUNNING, timeout=60)
    run.refresh_from_db()
    yield run
    run.refresh_from_db()
    if run.status == TrainingRunStatus.RUNNING:
        training_run_cancel(run=run)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status != TrainingRunStatus.RUNNING, timeout=120)


def test_an_upload_waiting_for_its_prediction_is_answered_while_a_model_trains(celery_worker, active_version,
                                                                                   running_training_run):
    upload = SimpleUploadedFile("during-training.png", image_bytes(seed=6101, size=(40, 40)))
    response = client_for("integrator").post("/api/v1/images/?wait=10", {"file": upload}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "predicted", celery_worker.log_tail()
    assert body["prediction"]["model_version"] == active_version.pk
    assert set(body["prediction"]["probabilities"]) == {"crazing", "inclusion"}
    run = TrainingRun.objects.get(pk=running_training_run.pk)
    assert run.status == TrainingRunStatus.RUNNING and run.finished_at is None
    assert Prediction.objects.get(image_id=body["id"]).created_at > run.started_at
