"""classify/ on an installation without Redis (the embedded ``make run`` where ``redis-server`` is
not installed): the frames, the answer, idempotency claims and stored answers pass through files
under ``var/classify``. The line worker's service runs in this process where the message would be
sent, so its answer file is written before the web side looks for it."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inspections.catalog.services.classes import defect_classes_ensure
from inspections.line.services import classify_transport
from inspections.line.services.classify import classify_run
from inspections.models import InspectionImage, LineMinute, RetentionPolicy
from inspections.registry.services.model_versions import model_version_promote
from inspections.review import prediction_events
from inspections.review.services.inference import Serving
from mlcore.inference import PredictionResult
from tests.factories import ModelVersionFactory, image_bytes
from tests.inspections.api.conftest import client_for

URL = "/api/v1/classify/"
CLASSES = ["crazing", "scratches"]


class _Classifier:
    """Answers every frame ``crazing`` at 0.9, no review reason: what is being tested is the way
    there and back, not the model."""

    classes = CLASSES

    def predict_with_features(self, arrays, *, class_thresholds=None):
        result = PredictionResult(label="crazing", confidence=0.9, probabilities={"crazing": 0.9, "scratches": 0.1},
                                  needs_review=False, ood_score=0.1)
        return [result] * len(arrays), np.zeros((len(arrays), 4), dtype=np.float32)


@pytest.fixture
def spool(settings, tmp_path):
    settings.STEELQC_EVENTS_REDIS_URL = ""  # the embedded installation without redis-server
    settings.VAR_DIR = tmp_path
    return tmp_path / "classify"


@pytest.fixture
def line_worker(monkeypatch, spool) -> list[dict]:
    """Each classify/ message handed to the line worker's service at once; returns the messages."""
    version = model_version_promote(version=ModelVersionFactory())
    loaded = SimpleNamespace(classifier=_Classifier(), classes=defect_classes_ensure(names=CLASSES))
    serving = Serving(classifier_version=version, classifier=loaded, anomaly_version=None)
    monkeypatch.setattr("inspections.review.services.inference.serving_models", lambda: serving)
    RetentionPolicy.objects.create(source="", sample_rate=0.0, max_per_minute=10, max_per_day=10)
    sent = []

    def send(name, *, kwargs, queue):
        sent.append(kwargs)
        classify_run(**kwargs)

    monkeypatch.setattr("inspections.queueing._send", send)
    return sent


def _post(client, *tiles, key: str | None = None):
    files = [SimpleUploadedFile(name, content) for name, content in tiles]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL + "?timeout=5", {"file": files, "source": "strip-9"}, format="multipart", **headers)


@pytest.mark.django_db
def test_classify_answers_through_files_when_no_redis_is_configured(line_worker, spool):
    assert prediction_events.events_client() is None
    tiles = [("t-1.png", image_bytes(seed=301)), ("t-2.png", image_bytes(seed=302))]
    response = _post(client_for("integrator"), *tiles)
    assert response.status_code == 200, response.content[:300]
    results = response.json()["results"]
    assert [(r["filename"], r["prediction"]["label"], r["kept"]) for r in results] == [
        ("t-1.png", "crazing", False), ("t-2.png", "crazing", False)]
    assert len(line_worker) == 1
    minute = LineMinute.objects.get(source="strip-9")
    assert (minute.seen, minute.kept) == (2, 0)
    assert not InspectionImage.objects.filter(source="strip-9").exists()
    # The frames were taken (nothing of them is left); the answer waits for a retry until it expires.
    assert len([path for path in spool.iterdir() if not path.name.startswith(".")]) == 1


@pytest.mark.django_db
def test_a_retry_with_the_same_key_gets_the_stored_answer_without_classifying_again(line_worker):
    client = client_for("integrator")
    tile = ("t-1.png", image_bytes(seed=303))
    first = _post(client, tile, key="coil-3-frame-1")
    second = _post(client, tile, key="coil-3-frame-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert len(line_worker) == 1, "the retry classified the frame again"
    assert LineMinute.objects.get(source="strip-9").seen == 1
    other = _post(client, ("t-2.png", image_bytes(seed=304)), key="coil-3-frame-1")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")


def test_an_entry_is_added_only_once_and_is_gone_when_expired(tmp_path):
    transport = classify_transport.FileTransport(tmp_path)
    assert transport.value_add("claim", "first", ttl_s=60)
    assert not transport.value_add("claim", "second", ttl_s=60)
    assert transport.value_get("claim") == b"first"
    transport.value_set("old", "stale", ttl_s=60)
    path = transport._path("old")
    os.utime(path, (time.time() - 1, time.time() - 1))  # its expiry has passed
    assert transport.value_get("old") is None
    assert transport.value_add("old", "fresh", ttl_s=60)
    assert transport.value_get("old") == b"fresh"


def test_a_frame_is_taken_once(tmp_path):
    transport = classify_transport.FileTransport(tmp_path)
    transport.frames_put({"frame-0": b"bytes"}, ttl_s=60)
    assert transport.frames_take(["frame-0"]) == [b"bytes"]
    assert transport.frames_take(["frame-0"]) == [None]
    assert [path.name for path in tmp_path.iterdir()] == []
