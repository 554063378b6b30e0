"""The comparison job as a row: one per pair of versions, queued -> running -> done or failed.

Predictions are faked here (``version_predict_files`` with fixed answers); the API tests run real
models. Messages go through ``inspections.queueing._send`` (captured by ``no_queue``) after the
row commits, so requests run inside ``django_capture_on_commit_callbacks(execute=True)``.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from inspections import task_names
from inspections.api.exceptions import http_status
from inspections.errors import ApplicationError
from inspections.models import DefectClass, VersionComparison, VersionComparisonStatus
from inspections.registry.services import version_comparison as service
from inspections.registry.services.classifiers import VersionPredictions
from tests.factories import InspectionImageFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    """Two versions and two labelled images neither version's run saw (both compared)."""
    first, second = ModelVersionFactory(), ModelVersionFactory()
    crazing = DefectClass.objects.get(name="crazing")
    for _ in range(2):
        InspectionImageFactory(label=crazing, label_source="import")
    return first, second


@pytest.fixture
def ask(no_queue, django_capture_on_commit_callbacks):
    """Request the comparison as a view does; returns (API status, messages sent by this request)."""
    def ask(first, second, *, retry=False):
        before = len(no_queue)
        with django_capture_on_commit_callbacks(execute=True):
            request = service.version_comparison_retry if retry else service.version_comparison
            stored, _ = request(first=first, second=second)
        return stored["status"], no_queue[before:]
    return ask


def _predicting(monkeypatch, label="crazing", *, error=None, seen=None):
    """Fake predictions: every image ``label`` at 0.9, or ``error`` raised; ``seen`` collects the
    row's status while the worker predicts."""
    def predict(*, version, paths):
        if seen is not None:
            seen.append(VersionComparison.objects.get().status)
        if error is not None:
            raise error
        return VersionPredictions(results=[SimpleNamespace(label=label, confidence=0.9) for _ in paths],
                                  detects_boxes=False)
    monkeypatch.setattr(service, "version_predict_files", predict)


def _compute(messages) -> str:
    (name, kwargs, queue), = messages
    assert name == task_names.COMPARE_MODEL_VERSIONS and queue == task_names.INFERENCE_QUEUE
    return service.version_comparison_compute(**kwargs)


def test_a_comparison_goes_queued_running_done(pair, ask, monkeypatch):
    first, second = pair
    seen = []
    _predicting(monkeypatch, seen=seen)
    status, messages = ask(second, first)
    row = VersionComparison.objects.get()
    assert status == "computing" and row.status == VersionComparisonStatus.QUEUED and row.queued_at is not None
    assert (row.older_id, row.newer_id) == (first.pk, second.pk)  # the older version first, whatever the order asked
    assert messages[0][1] == {"first_id": first.pk, "second_id": second.pk, "fingerprint": row.fingerprint}

    assert _compute(messages) == "ready"
    assert seen == [VersionComparisonStatus.RUNNING, VersionComparisonStatus.RUNNING]  # one look per version
    row.refresh_from_db()
    assert row.status == VersionComparisonStatus.DONE and row.started_at <= row.finished_at
    assert [image[3:] for image in row.predictions] == [["crazing", 0.9, "crazing", 0.9]] * 2
    assert ask(first, second) == ("ready", [])


def test_a_message_for_a_finished_comparison_changes_nothing(pair, ask, monkeypatch):
    first, second = pair
    _predicting(monkeypatch)
    _, messages = ask(first, second)
    assert _compute(messages) == "ready"
    finished_at = VersionComparison.objects.get().finished_at
    _predicting(monkeypatch, error=AssertionError("a duplicate message must not predict"))
    assert _compute(messages) == "duplicate"
    assert VersionComparison.objects.get().finished_at == finished_at


def test_a_failed_comparison_stays_failed_until_asked_for_again(pair, ask, monkeypatch):
    first, second = pair
    _predicting(monkeypatch, error=OSError("model folder not found"))
    _, messages = ask(first, second)
    assert _compute(messages) == "failed"
    row = VersionComparison.objects.get()
    assert row.status == VersionComparisonStatus.FAILED and row.error == "OSError: model folder not found"
    assert ask(first, second) == ("failed", [])  # asking again is not a retry

    _predicting(monkeypatch)
    status, messages = ask(second, first, retry=True)
    row.refresh_from_db()
    assert status == "computing" and row.status == VersionComparisonStatus.QUEUED
    assert row.error == "" and row.finished_at is None and len(messages) == 1
    assert _compute(messages) == "ready"
    assert VersionComparison.objects.count() == 1


@pytest.mark.parametrize("done", [False, True])
def test_only_a_failed_comparison_can_be_asked_for_again(pair, ask, monkeypatch, done):
    first, second = pair
    _predicting(monkeypatch)
    _, messages = ask(first, second)
    if done:
        _compute(messages)
    with pytest.raises(ApplicationError) as refused:
        ask(first, second, retry=True)
    assert refused.value.code == "comparison_not_failed" and http_status(refused.value) == 409


def test_a_message_lost_with_its_worker_is_sent_again_after_the_requeue_age(pair, ask, monkeypatch):
    first, second = pair
    _predicting(monkeypatch)
    _, first_messages = ask(first, second)
    VersionComparison.objects.update(
        status=VersionComparisonStatus.RUNNING, queued_at=timezone.now() - timedelta(seconds=service.REQUEUE_AFTER_S - 60))
    assert ask(first, second) == ("computing", [])
    VersionComparison.objects.update(queued_at=timezone.now() - timedelta(seconds=service.REQUEUE_AFTER_S + 60))
    status, messages = ask(first, second)
    assert status == "computing" and messages == first_messages
    assert _compute(messages) == "ready"


def test_a_new_image_set_starts_the_row_over(pair, ask, monkeypatch):
    first, second = pair
    _predicting(monkeypatch)
    _, old_messages = ask(first, second)
    assert _compute(old_messages) == "ready"
    InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import")
    status, messages = ask(first, second)
    row = VersionComparison.objects.get()
    assert status == "computing" and row.status == VersionComparisonStatus.QUEUED and row.predictions is None
    assert messages[0][1]["fingerprint"] == row.fingerprint != old_messages[0][1]["fingerprint"]
    assert _compute(old_messages) == "stale"
    assert _compute(messages) == "ready" and len(VersionComparison.objects.get().predictions) == 3


def test_a_result_for_an_image_set_replaced_while_computing_is_dropped(pair, ask, monkeypatch):
    first, second = pair
    _, messages = ask(first, second)
    restarted = []

    def predict(*, version, paths):
        if not restarted:  # a new labelled image and a request arrive while the worker predicts
            InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import")
            restarted.append(ask(first, second))
        return VersionPredictions(results=[SimpleNamespace(label="crazing", confidence=0.9) for _ in paths],
                                  detects_boxes=False)

    monkeypatch.setattr(service, "version_predict_files", predict)
    assert _compute(messages) == "stale"
    row = VersionComparison.objects.get()
    assert row.status == VersionComparisonStatus.QUEUED and row.predictions is None
    assert row.fingerprint == restarted[0][1][0][1]["fingerprint"] != messages[0][1]["fingerprint"]


def test_the_database_keeps_one_row_per_pair_of_two_versions(pair):
    first, second = pair
    VersionComparison.objects.create(older=first, newer=second, fingerprint="0" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        VersionComparison.objects.create(older=first, newer=second, fingerprint="1" * 64)
    with pytest.raises(IntegrityError), transaction.atomic():
        VersionComparison.objects.create(older=first, newer=first, fingerprint="1" * 64)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_one_pair_make_one_row_and_send_one_message(monkeypatch):
    sent, lock = [], threading.Lock()

    def send(name, *, kwargs, queue):
        with lock:
            sent.append(kwargs)

    monkeypatch.setattr("inspections.queueing._send", send)
    first, second = ModelVersionFactory(), ModelVersionFactory()
    requests = 6
    start, answers = threading.Barrier(requests), []

    def request(index):
        try:
            start.wait()
            ordered = (first, second) if index % 2 else (second, first)
            answers.append(service.version_comparison(first=ordered[0], second=ordered[1])[0]["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(i,)) for i in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == ["computing"] * requests
    assert VersionComparison.objects.count() == 1
    assert len(sent) == 1
