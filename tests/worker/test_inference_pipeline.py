"""Upload -> queue -> real worker process -> prediction, against PostgreSQL and Redis."""

import signal
import time

import pytest

from inspections.catalog.services.images import image_upload
from inspections.models import ImageStatus, InspectionImage, ModelVersion, Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review.services.inference import pending_images_requeue
from tests.conftest import wait_for
from tests.factories import image_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]




def _upload(seed: int) -> InspectionImage:
    return image_upload(content=image_bytes(seed=seed, size=(40, 40)), filename=f"{seed}.png", uploaded_by=None).image


def _active_version(model_dir) -> ModelVersion:
    return model_version_promote(version=model_version_register(model_dir=model_dir))


def test_upload_is_predicted_by_the_worker_with_all_class_probabilities(celery_worker, tiny_model_dirs):
    version = _active_version(tiny_model_dirs[0])
    image = _upload(seed=101)
    prediction = wait_for(lambda: Prediction.objects.filter(image=image).first())
    assert prediction.model_version_id == version.id
    assert set(prediction.probabilities) == {"crazing", "inclusion"}
    assert abs(sum(prediction.probabilities.values()) - 1.0) < 1e-4
    assert prediction.label.name == max(prediction.probabilities, key=prediction.probabilities.get)
    assert prediction.latency_ms is not None and prediction.latency_ms > 0
    image.refresh_from_db()
    assert image.status == ImageStatus.PREDICTED


def test_without_an_active_model_images_wait_and_are_predicted_after_promotion(celery_worker, tiny_model_dirs):
    images = [_upload(seed=s) for s in (201, 202, 203)]
    time.sleep(2)  # the worker has had the tasks; with no model they change nothing
    assert not Prediction.objects.exists()
    assert {i.status for i in InspectionImage.objects.all()} == {ImageStatus.PENDING}
    _active_version(tiny_model_dirs[0])
    wait_for(lambda: Prediction.objects.filter(image__in=images).count() == 3)


def test_promoting_a_new_version_swaps_the_model_without_restarting_the_worker(celery_worker, tiny_model_dirs):
    first = _active_version(tiny_model_dirs[0])
    before = _upload(seed=301)
    wait_for(lambda: Prediction.objects.filter(image=before, model_version=first).exists())
    pid = celery_worker.inference.process.pid
    second = _active_version(tiny_model_dirs[1])
    after = _upload(seed=302)
    prediction = wait_for(lambda: Prediction.objects.filter(image=after).first())
    assert prediction.model_version_id == second.id
    assert celery_worker.inference.process.pid == pid and celery_worker.inference.running


def test_worker_killed_mid_task_still_yields_exactly_one_prediction(celery_worker, tiny_model_dirs):
    _active_version(tiny_model_dirs[0])
    # A fresh worker process must load TensorFlow and the model before it can predict, so
    # killing it as soon as it has taken the message kills it mid-task.
    celery_worker.inference.stop()
    celery_worker.inference.start()
    marker = celery_worker.log_path.stat().st_size
    image = _upload(seed=401)
    wait_for(lambda: "predict_images" in celery_worker.log_path.read_text(errors="replace")[marker:], interval=0.02)
    celery_worker.inference.kill(signal.SIGKILL)
    assert not Prediction.objects.filter(image=image).exists()

    celery_worker.inference.start()
    assert pending_images_requeue(older_than_s=0) >= 1  # what the periodic sweeper does
    wait_for(lambda: Prediction.objects.filter(image=image).exists())
    time.sleep(1)
    assert Prediction.objects.filter(image=image).count() == 1
