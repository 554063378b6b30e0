"""?wait=: woken by the inference service's announcement (Redis pub/sub), not by polling the
database; a deadline that holds; a bound on waiting requests per process (503)."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from inspections.models import InspectionImage, ModelVersionStatus, Prediction
from inspections.review import prediction_events
from inspections.review import selectors as review_selectors
from tests.conftest import wait_for
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for

WAITING = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _post(client, content: bytes, query: str):
    file = SimpleUploadedFile("strip.png", content, content_type="application/octet-stream")
    return client.post(f"/api/v1/images/{query}", {"file": [file]}, format="multipart")


def _predict_later(image_ids: list[int], delay_s: float, *, announce: bool = True) -> threading.Thread:
    """Stand in for the worker: after ``delay_s`` write the predictions, commit, announce."""

    def run():
        try:
            time.sleep(delay_s)
            version = ModelVersionFactory()
            for image_id in image_ids:
                PredictionFactory(image=InspectionImage.objects.get(pk=image_id), model_version=version)
            if announce:
                prediction_events.images_done_announce(image_ids=image_ids)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@WAITING
def test_wait_wakes_on_the_announcement_and_reads_the_database_once():
    images = [InspectionImageFactory().pk, InspectionImageFactory().pk]
    helper = _predict_later(images, delay_s=0.8)
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        finished = prediction_events.prediction_wait(image_ids=images, timeout_s=20)
    elapsed = time.monotonic() - started
    helper.join(5)
    assert finished == set(images)
    assert len(queries) == 1, [q["sql"] for q in queries]  # one look before sleeping; no polling loop
    assert 0.8 <= elapsed < 15  # woken by the message, long before the deadline


@WAITING
def test_wait_honours_its_deadline_without_polling():
    image = InspectionImageFactory().pk
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        finished = prediction_events.prediction_wait(image_ids=[image], timeout_s=0.7)
    elapsed = time.monotonic() - started
    assert finished == set()
    assert len(queries) == 1
    assert 0.7 <= elapsed < 3


@WAITING
def test_a_missed_announcement_ends_the_wait_at_its_deadline():
    # The stand-in writes without announcing (as if the message was lost): the waiter sleeps to
    # its deadline, never polls, and the upload's final read still finds the prediction.
    image = InspectionImageFactory().pk
    helper = _predict_later([image], delay_s=0.3, announce=False)
    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        finished = prediction_events.prediction_wait(image_ids=[image], timeout_s=1.5)
    elapsed = time.monotonic() - started
    helper.join(5)
    assert finished == set()
    assert len(queries) == 1
    assert 1.5 <= elapsed < 5
    assert review_selectors.images_finished(image_ids=[image]) == {image}


@WAITING
def test_failed_images_count_as_finished():
    image = InspectionImageFactory(status="failed").pk
    with CaptureQueriesContext(connection) as queries:
        assert prediction_events.prediction_wait(image_ids=[image], timeout_s=5) == {image}
    assert len(queries) == 1


@WAITING
def test_without_redis_waiting_falls_back_to_a_slow_poll(settings):
    settings.STEELQC_EVENTS_REDIS_URL = ""  # the embedded installation (filesystem broker)
    image = InspectionImageFactory().pk
    helper = _predict_later([image], delay_s=0.8, announce=False)
    with CaptureQueriesContext(connection) as queries:
        finished = prediction_events.prediction_wait(image_ids=[image], timeout_s=10)
    helper.join(5)
    assert finished == {image}
    # One look every FALLBACK_POLL_S (0.5 s), not every few milliseconds.
    assert 2 <= len(queries) <= 4


@pytest.mark.django_db
def test_waiters_beyond_the_bound_get_503_and_nothing_is_stored(settings):
    settings.STEELQC_API_MAX_WAITERS = 1
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)  # without one, ?wait= does not wait (nor take a place)
    client = client_for("integrator")
    with prediction_events.waiter_slot():  # another request is waiting in this process
        response = _post(client, image_bytes(seed=72), "?wait=5")
        error = assert_error(response, 503, "too_many_waiters")
        assert response["Retry-After"] == "1"
        assert "retry" in error["message"]
        assert not InspectionImage.objects.exists()
        # Uploads that do not wait are not affected.
        assert _post(client, image_bytes(seed=73), "").status_code == 201
        with pytest.raises(prediction_events.TooManyWaiters):
            with prediction_events.waiter_slot():
                pass
    # The place is free again once the waiter left.
    assert _post(client, image_bytes(seed=72), "?wait=0.1").status_code == 201
    with prediction_events.waiter_slot():
        pass


@pytest.mark.worker
@WAITING
def test_the_real_worker_wakes_the_waiting_upload(celery_worker, tiny_model_dirs, monkeypatch):
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    # The worker loads TensorFlow and the model on its first batch (slow on a busy machine): warm it.
    _post(client_for("integrator"), image_bytes(seed=75, size=(40, 40)), "")
    wait_for(lambda: Prediction.objects.exists(), timeout=300)
    looks = []
    real = review_selectors.images_finished
    monkeypatch.setattr(prediction_events, "images_finished", lambda **kw: looks.append(kw) or real(**kw))
    started = time.monotonic()
    response = _post(client_for("integrator"), image_bytes(seed=74, size=(40, 40)), "?wait=30")
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.json()["prediction"] is not None, celery_worker.log_tail()
    assert len(looks) == 1  # looked once, then slept until the worker's announcement
    assert elapsed < 25  # answered on the announcement, not at the deadline
