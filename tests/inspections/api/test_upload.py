"""POST images/: one or several files, refusals that leave nothing behind, and ?wait=."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from inspections.models import InspectionImage, ModelVersionStatus
from inspections.review.prediction_events import images_done_announce
from tests.factories import ModelVersionFactory, PredictionFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # a PNG signature and nothing decodable after it


def _file(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def _stored_files(root) -> set:
    return {p for p in root.rglob("*") if p.is_file()}


def _post(client, files, query: str = "", **fields):
    return client.post(f"/api/v1/images/{query}", {"file": files, **fields}, format="multipart")


@pytest.fixture
def integrator():
    return client_for("integrator")


def test_one_file_is_stored_and_answered_201(integrator, media_root):
    content = image_bytes(seed=1, size=(40, 30))
    response = _post(integrator, [_file("coil-1.png", content)], source="line-3", external_id="coil-1")
    assert response.status_code == 201, response.content
    body = response.json()
    image = InspectionImage.objects.get()
    assert body["id"] == image.pk
    assert response["Location"].endswith(f"/api/v1/images/{image.pk}/")
    assert (body["width"], body["height"], body["format"], body["status"]) == (40, 30, "PNG", "pending")
    assert (body["source"], body["external_id"], body["original_name"]) == ("line-3", "coil-1", "coil-1.png")
    assert body["uploaded_by"] == integrator.user.username
    assert body["prediction"] is None
    assert (media_root / image.file.name).read_bytes() == content


def test_same_bytes_again_is_the_same_image_with_200(integrator):
    content = image_bytes(seed=2)
    first = _post(integrator, [_file("a.png", content)])
    again = _post(integrator, [_file("renamed.png", content)])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert InspectionImage.objects.count() == 1


def test_corrupt_file_is_400_and_leaves_no_row_or_file(integrator, media_root):
    before = _stored_files(media_root)
    assert_error(_post(integrator, [_file("broken.png", CORRUPT)]), 400, "undecodable_image")
    assert not InspectionImage.objects.exists()
    assert _stored_files(media_root) == before


def test_missing_file_field_is_400(integrator):
    error = assert_error(integrator.post("/api/v1/images/", {"source": "x"}, format="multipart"), 400, "invalid")
    assert "file" in error["details"]


def test_json_body_is_415(integrator):
    assert_error(integrator.post("/api/v1/images/", {"file": "abc"}, format="json"), 415, "unsupported_media_type")


def test_too_long_external_id_is_400(integrator):
    error = assert_error(_post(integrator, [_file("a.png", image_bytes(seed=3))], external_id="x" * 201), 400, "invalid")
    assert "external_id" in error["details"]
    assert not InspectionImage.objects.exists()


def test_several_files_one_corrupt_keeps_the_valid_ones(integrator, media_root):
    before = _stored_files(media_root)
    files = [_file("good-1.png", image_bytes(seed=11)), _file("bad.png", CORRUPT), _file("good-2.bmp", image_bytes(seed=12, fmt="BMP"))]
    response = _post(integrator, files, source="line-9")
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["good-1.png", "bad.png", "good-2.bmp"]
    assert [r["created"] for r in results if "image" in r] == [True, True]
    assert results[1]["error"]["code"] == "undecodable_image" and "image" not in results[1]
    assert set(results[1]["error"]) == {"code", "message", "details"}
    stored = InspectionImage.objects.order_by("id")
    assert [i.original_name for i in stored] == ["good-1.png", "good-2.bmp"]
    assert {i.source for i in stored} == {"line-9"}
    assert {results[0]["image"]["id"], results[2]["image"]["id"]} == {i.pk for i in stored}
    assert len(_stored_files(media_root) - before) == 2  # nothing written for the corrupt file


def test_several_files_all_refused_is_400_with_per_file_results(integrator):
    error = assert_error(_post(integrator, [_file("a.png", CORRUPT), _file("b.txt", b"hello")]), 400, "all_files_refused")
    assert [r["filename"] for r in error["details"]["results"]] == ["a.png", "b.txt"]
    assert all("error" in r for r in error["details"]["results"])
    assert not InspectionImage.objects.exists()


def test_several_known_files_is_200(integrator):
    contents = [image_bytes(seed=21), image_bytes(seed=22)]
    assert _post(integrator, [_file(f"{i}.png", c) for i, c in enumerate(contents)]).status_code == 201
    again = _post(integrator, [_file(f"{i}.png", c) for i, c in enumerate(contents)])
    assert again.status_code == 200
    assert [r["created"] for r in again.json()["results"]] == [False, False]


def test_too_many_files_is_400_and_stores_nothing(integrator, settings):
    settings.STEELQC_API_MAX_FILES_PER_REQUEST = 2
    files = [_file(f"{i}.png", image_bytes(seed=30 + i)) for i in range(3)]
    error = assert_error(_post(integrator, files), 400, "invalid")
    assert "file" in error["details"]
    assert not InspectionImage.objects.exists()


@pytest.mark.parametrize("wait", ["-1", "31", "soon", "nan"])
def test_bad_wait_is_400_and_stores_nothing(integrator, wait):
    error = assert_error(_post(integrator, [_file("a.png", image_bytes(seed=40))], query=f"?wait={wait}"), 400, "invalid")
    assert "wait" in error["details"]
    assert not InspectionImage.objects.exists()


def _predict_when_stored(sha256: str, delay_s: float) -> threading.Thread:
    """Stand in for the worker: write a prediction once the uploaded row is committed."""

    def run():
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                image = InspectionImage.objects.filter(sha256=sha256).first()
                if image is not None:
                    time.sleep(delay_s)
                    PredictionFactory(image=image, model_version=ModelVersionFactory(),
                                      probabilities={"crazing": 0.25, "scratches": 0.75})
                    images_done_announce(image_ids=[image.pk])  # as the inference service does
                    return
                time.sleep(0.02)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_wait_returns_as_soon_as_the_prediction_lands():
    import hashlib

    content = image_bytes(seed=50)
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)  # without one, ?wait= answers at once (test_error_texts)
    helper = _predict_when_stored(hashlib.sha256(content).hexdigest(), delay_s=0.3)
    started = time.monotonic()
    response = _post(client_for("integrator"), [_file("a.png", content)], query="?wait=10")
    elapsed = time.monotonic() - started
    helper.join(5)
    assert response.status_code == 201
    assert response.json()["prediction"]["label"] == "scratches"
    assert response.json()["prediction"]["probabilities"] == {"crazing": 0.25, "scratches": 0.75}
    assert 0.3 <= elapsed < 5


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_wait_gives_up_after_the_time_asked_for():
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    started = time.monotonic()
    response = _post(client_for("integrator"), [_file("a.png", image_bytes(seed=51))], query="?wait=0.6")
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert response.json()["prediction"] is None
    assert 0.6 <= elapsed < 3


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_upload_with_wait_gets_the_real_workers_prediction(celery_worker, tiny_model_dirs):
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    response = _post(client_for("integrator"), [_file("strip.png", image_bytes(seed=60, size=(40, 40)))],
                     query="?wait=30")
    assert response.status_code == 201
    prediction = response.json()["prediction"]
    assert prediction is not None, celery_worker.log_tail()
    assert prediction["model_version"] == version.pk
    assert set(prediction["probabilities"]) == {"crazing", "inclusion"}
    assert prediction["label"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
    assert response.json()["status"] == "predicted"
