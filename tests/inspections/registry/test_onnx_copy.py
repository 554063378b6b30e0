"""model.onnx: built once by the training worker's service from the version's held-out images,
listed and downloadable through the API, asked for once, left out with its reason."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from django.core.files.storage import default_storage

from inspections import task_names
from inspections.registry.models import DatasetSnapshot, DatasetSnapshotItem
from inspections.registry.services.model_versions import model_version_register
from inspections.registry.services.onnx_copy import ONNX_RETRY_AFTER_S, model_version_onnx_build
from mlcore.artefact import ONNX_CHECK_FILE, ONNX_FILE
from mlcore.io import load_image
from tests.factories import DefectClassFactory, InspectionImageFactory, TrainingRunFactory
from tests.inspections.api.conftest import assert_error, client_for


@pytest.fixture
def converted(tmp_path):
    """What mlcore.onnx_copy leaves for the service to store: (folder, record, frames). The real
    conversion and check run once, in the training worker: tests/worker/test_onnx_copy_worker.py."""
    (tmp_path / ONNX_FILE).write_bytes(b"an ONNX copy")
    record = {"file": ONNX_FILE, "included": True, "check_images": 2, "max_probability_difference": 1e-7,
              "top1_agreement": 1.0, "size": len(b"an ONNX copy")}
    return tmp_path, record, []


# --- built by the worker's service, served by the API ---------------------------------------------------

@pytest.fixture
def version(db, tiny_model_dirs):
    return model_version_register(model_dir=tiny_model_dirs[0])


def _get(path: str, role: str = "integrator"):
    return client_for(role).get(f"/api/v1/model-versions/{path}")


def _listed(version) -> dict:
    response = _get(f"{version.pk}/artefacts/")
    assert response.status_code == 200
    return {entry["name"]: entry for entry in response.json()}


def _converter_from(folder, record, seen: list):
    """Stands in for mlcore.onnx_copy.onnx_copy_export: hands back the one real conversion's files."""
    def export(*, model_dir, out_dir, check_images=(), check_source=""):
        seen.append([np.asarray(image) for image in check_images])
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in (ONNX_FILE, ONNX_CHECK_FILE) if record["included"] else (ONNX_CHECK_FILE,):
            if name == ONNX_CHECK_FILE:
                (out_dir / name).write_text(json.dumps(record))
            else:
                shutil.copy(folder / name, out_dir / name)
        return record
    return export


def _trained_on(version, images: list[tuple[object, str]]) -> None:
    label = DefectClassFactory(name="crazing")
    snapshot = DatasetSnapshot.objects.create(image_count=len(images), counts={}, checksum="x")
    DatasetSnapshotItem.objects.bulk_create([DatasetSnapshotItem(snapshot=snapshot, image=image, label=label,
                                                                 split=split) for image, split in images])
    TrainingRunFactory(snapshot=snapshot, model_version=version)


def test_the_worker_builds_it_once_from_held_out_images_and_the_api_lists_and_serves_it(
        version, converted, monkeypatch):
    out, record, _ = converted
    train, val, test, wide = (InspectionImageFactory(seed=1), InspectionImageFactory(seed=2),
                              InspectionImageFactory(seed=3), InspectionImageFactory(seed=4, width=64))
    _trained_on(version, [(train, "train"), (val, "val"), (test, "test"), (wide, "test")])
    seen: list = []
    monkeypatch.setattr("mlcore.onnx_copy.onnx_copy_export", _converter_from(out, record, seen))

    assert model_version_onnx_build(version_id=version.pk)["included"] is True
    # Never trained on, of the copy's 32x32 shape, the test split first: not the training image nor the wide one.
    assert [frame.tobytes() for frame in seen[0]] == [load_image(image.file.path).tobytes() for image in (test, val)]

    listed = _listed(version)
    local = (out / ONNX_FILE).read_bytes()
    assert (listed[ONNX_FILE]["size"], listed[ONNX_FILE]["sha256"]) == (len(local), hashlib.sha256(local).hexdigest())
    response = _get(f"{version.pk}/artefacts/{ONNX_FILE}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == local
    assert response["X-Checksum-SHA256"] == hashlib.sha256(local).hexdigest()
    check = _get(f"{version.pk}/artefacts/{ONNX_CHECK_FILE}/")
    assert json.loads(b"".join(check.streaming_content))["top1_agreement"] == 1.0

    assert model_version_onnx_build(version_id=version.pk)["included"] is True
    assert len(seen) == 1, "built a second time"


def test_the_first_download_asks_the_training_worker_once_and_says_to_come_back(version, no_queue):
    assert (_listed(version)[ONNX_FILE]["size"], _listed(version)[ONNX_FILE]["sha256"]) == (None, None)
    for _ in range(2):
        response = _get(f"{version.pk}/artefacts/{ONNX_FILE}/")
        assert_error(response, 503, "artefact_building")
        assert response["Retry-After"] == str(ONNX_RETRY_AFTER_S)
    assert no_queue == [(task_names.BUILD_ONNX_COPY, {"version_id": version.pk}, task_names.TRAINING_QUEUE)]
    assert not default_storage.exists(f"{version.artifact_path}/{ONNX_FILE}")


def test_a_copy_that_failed_its_check_is_left_out_with_the_reason(version, converted, monkeypatch, no_queue):
    out, record, _ = converted
    failed = {**record, "included": False, "reason": "the ONNX copy did not match Keras: the top class agrees "
                                                     "with Keras on 87.5% of the check images (needs 100%)"}
    monkeypatch.setattr("mlcore.onnx_copy.onnx_copy_export", _converter_from(out, failed, []))
    model_version_onnx_build(version_id=version.pk)

    listed = _listed(version)
    assert ONNX_FILE not in listed and ONNX_CHECK_FILE in listed
    response = _get(f"{version.pk}/artefacts/{ONNX_FILE}/")
    assert_error(response, 404, "artefact_left_out")
    assert "87.5% of the check images" in response.json()["error"]["message"]
    assert no_queue == [], "a decided copy is not built again"


def test_the_version_page_says_the_worker_builds_it_when_first_asked_for(version, client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(roles=["ml_admin"]))
    page = client.get(f"/models/{version.pk}/").content.decode()
    row = page[page.index(f'data-artefact="{ONNX_FILE}"'):].split("</tr>")[0]
    assert "built and checked by the training worker when first asked for" in row


def test_after_a_restore_without_the_copy_it_is_built_again(version, converted, monkeypatch, no_queue):
    # Backups leave out what is made on demand: the record that kept the copy comes back without it.
    out, record, _ = converted
    seen: list = []
    monkeypatch.setattr("mlcore.onnx_copy.onnx_copy_export", _converter_from(out, record, seen))
    model_version_onnx_build(version_id=version.pk)
    default_storage.delete(f"{version.artifact_path}/{ONNX_FILE}")

    assert _listed(version)[ONNX_FILE]["size"] is None
    assert_error(_get(f"{version.pk}/artefacts/{ONNX_FILE}/"), 503, "artefact_building")
    assert [name for name, _, _ in no_queue] == [task_names.BUILD_ONNX_COPY]
    model_version_onnx_build(version_id=version.pk)
    assert len(seen) == 2
    assert _get(f"{version.pk}/artefacts/{ONNX_FILE}/").status_code == 200
