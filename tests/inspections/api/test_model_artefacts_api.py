"""GET model-versions/{id}/artefacts/ and .../artefacts/{name}/: a version's files for the edge."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import textwrap
import zipfile

import pytest
from django.core.files.storage import default_storage

from inspections.catalog.services.images import image_upload
from inspections.registry.services import artefacts as model_artefacts
from inspections.registry.services.artefacts import SAVED_MODEL_ZIP
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review.services.inference import predictions_create
from mlcore.artefact import (CLASSES_FILE, CONFIG_FILE, METRICS_FILE, MODEL_FILE, ONNX_FILE, OOD_FILE, SERVING_FILE,
                             SUSPECTS_FILE)
from tests.conftest import ROOT, tiny_dataset
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

STORED = (MODEL_FILE, SERVING_FILE, CLASSES_FILE, CONFIG_FILE, METRICS_FILE, OOD_FILE, SUSPECTS_FILE)


@pytest.fixture
def version(tiny_model_dirs):
    return model_version_register(model_dir=tiny_model_dirs[0])


def _get(path: str, role: str = "integrator"):
    return client_for(role).get(f"/api/v1/model-versions/{path}")


def _body(response) -> bytes:
    assert response.status_code == 200, response.content[:300] if not response.streaming else ""
    return b"".join(response.streaming_content)


def test_the_list_names_every_file_with_its_size_and_sha256(version, tiny_model_dirs):
    entries = _get(f"{version.pk}/artefacts/").json()
    by_name = {entry["name"]: entry for entry in entries}
    assert set(by_name) == {*STORED, SAVED_MODEL_ZIP, ONNX_FILE}
    for name in STORED:
        local = (tiny_model_dirs[0] / name).read_bytes()
        assert (by_name[name]["size"], by_name[name]["sha256"]) == (len(local), hashlib.sha256(local).hexdigest())
        assert by_name[name]["url"].endswith(f"/api/v1/model-versions/{version.pk}/artefacts/{name}/")
    for name in (SAVED_MODEL_ZIP, ONNX_FILE):  # made on their first download
        assert (by_name[name]["size"], by_name[name]["sha256"]) == (None, None)


@pytest.mark.parametrize("name", STORED)
def test_each_file_downloads_as_stored(version, tiny_model_dirs, name):
    response = _get(f"{version.pk}/artefacts/{name}/", role="ml_admin")
    local = (tiny_model_dirs[0] / name).read_bytes()
    assert _body(response) == local
    assert response["X-Checksum-SHA256"] == hashlib.sha256(local).hexdigest()
    assert f'filename="{version.name}-{name}"' in response["Content-Disposition"]


def test_the_saved_model_is_exported_once_and_kept_beside_the_artefact(version, monkeypatch):
    bundle = zipfile.ZipFile(io.BytesIO(_body(_get(f"{version.pk}/artefacts/{SAVED_MODEL_ZIP}/"))))
    names = set(bundle.namelist())
    assert {"saved_model/saved_model.pb", CLASSES_FILE, CONFIG_FILE, OOD_FILE} <= names
    assert json.loads(bundle.read(CLASSES_FILE)) == version.classes
    stored = f"{version.artifact_path}/{SAVED_MODEL_ZIP}"
    assert default_storage.exists(stored)

    monkeypatch.setattr("mlcore.export.export_model", lambda **kwargs: pytest.fail("exported a second time"))
    again = _get(f"{version.pk}/artefacts/{SAVED_MODEL_ZIP}/")
    assert set(zipfile.ZipFile(io.BytesIO(_body(again))).namelist()) == names
    listed = {e["name"]: e for e in _get(f"{version.pk}/artefacts/").json()}[SAVED_MODEL_ZIP]
    assert listed["size"] == default_storage.size(stored)
    assert listed["sha256"] == again["X-Checksum-SHA256"]


def test_a_version_without_a_serving_copy_lists_none_and_answers_404(version):
    default_storage.delete(f"{version.artifact_path}/{SERVING_FILE}")
    assert SERVING_FILE not in {e["name"] for e in _get(f"{version.pk}/artefacts/").json()}
    assert_error(_get(f"{version.pk}/artefacts/{SERVING_FILE}/"), 404, "not_found")


@pytest.mark.parametrize("name", ["model.pt", "plots.png", "..", "confusion_matrix.png"])
def test_an_unknown_artefact_name_is_404(version, name):
    assert_error(_get(f"{version.pk}/artefacts/{name}/"), 404, "not_found")


def test_an_unknown_version_is_404(version):
    assert_error(_get("999999/artefacts/"), 404, "not_found")
    assert_error(_get(f"999999/artefacts/{CLASSES_FILE}/"), 404, "not_found")


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_viewers_and_qa_may_not_download(version, role):
    assert_error(_get(f"{version.pk}/artefacts/", role=role), 403, "permission_denied")
    assert_error(_get(f"{version.pk}/artefacts/{MODEL_FILE}/", role=role), 403, "permission_denied")


LITERT_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from PIL import Image
    from ai_edge_litert.interpreter import Interpreter

    model, image_path, classes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    pixels = np.asarray(Image.open(image_path).convert("L"), dtype=np.float32)[None, :, :, None]
    interpreter = Interpreter(model_path=model)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(pixels.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
    interpreter.invoke()
    outputs = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    probabilities = next(o for o in outputs if o.shape[-1] == len(classes))[0]
    print(json.dumps(dict(zip(classes, map(float, probabilities)))))
""")


def test_the_downloaded_tflite_copy_gives_the_apis_probabilities_in_another_process(version, no_queue, tmp_path):
    model_version_promote(version=version)
    sample = tiny_dataset(tmp_path / "images", seed=77, per_class=1)[0][0]
    image = image_upload(content=sample.read_bytes(), filename="strip.png", uploaded_by=None).image
    assert predictions_create(image_ids=[image.pk]) == 1
    api_prediction = client_for("integrator").get(f"/api/v1/images/{image.pk}/").json()["prediction"]

    tflite = tmp_path / SERVING_FILE
    tflite.write_bytes(_body(_get(f"{version.pk}/artefacts/{SERVING_FILE}/")))
    classes = json.loads(_body(_get(f"{version.pk}/artefacts/{CLASSES_FILE}/")))
    run = subprocess.run([sys.executable, "-c", LITERT_SCRIPT, str(tflite), str(sample), json.dumps(classes)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    edge = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(edge) == set(api_prediction["probabilities"])
    for name, probability in api_prediction["probabilities"].items():
        assert edge[name] == pytest.approx(probability, abs=1e-4)
    assert max(edge, key=edge.get) == api_prediction["label"]


def test_the_digest_is_computed_once(version, monkeypatch):
    _get(f"{version.pk}/artefacts/")
    monkeypatch.setattr(model_artefacts.default_storage, "open", lambda *a, **k: pytest.fail("read again"))
    assert len(_get(f"{version.pk}/artefacts/").json()) == len(STORED) + 2


def test_a_copy_made_again_gets_its_own_digest(version):
    """A copy made on demand is made again after a restore left it out, and need not be byte for byte
    the same: the header and the list give the digest of the file served, not a remembered one."""
    storage_name = f"{version.artifact_path}/{SUSPECTS_FILE}"
    first = _body(_get(f"{version.pk}/artefacts/{SUSPECTS_FILE}/"))
    default_storage.delete(storage_name)
    default_storage.save(storage_name, io.BytesIO(first + b"\n"))
    response = _get(f"{version.pk}/artefacts/{SUSPECTS_FILE}/")
    body = _body(response)
    assert body == first + b"\n"
    assert response["X-Checksum-SHA256"] == hashlib.sha256(body).hexdigest()
    listed = {row["name"]: row for row in _get(f"{version.pk}/artefacts/").json()}
    assert listed[SUSPECTS_FILE]["sha256"] == hashlib.sha256(body).hexdigest()
