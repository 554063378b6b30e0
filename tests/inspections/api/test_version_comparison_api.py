"""GET model-versions/{a}/compare/{b}/: two real versions side by side on the same images.

The second version is the first's artefact with its class list reversed: the same network, every
prediction named the other way round, so the two disagree on every image. The worker's part
(``version_comparison_compute``) runs in-process on the message that would have been queued;
the message is sent after the comparison's row commits, so requests go through ``get``, which
runs a request's after-commit callbacks as its commit would.
"""

from __future__ import annotations

import json
import shutil

import pytest

from inspections import task_names
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import DatasetSnapshot, DatasetSnapshotItem, DefectClass, InspectionImage
from inspections.registry.services.model_versions import model_version_register
from inspections.registry.services.version_comparison import version_comparison_compute
from mlcore.artefact import CLASSES_FILE
from tests.conftest import tiny_dataset, wait_for
from tests.factories import InspectionImageFactory, ModelVersionFactory, TrainingRunFactory
from tests.inspections.api.conftest import ROLES, assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(tiny_model_dirs, tmp_path, no_queue):
    """(v_first, v_second) where the second is trained by run with a frozen 4-image test split,
    and 20 labelled images of which 16 neither version's run saw."""
    return _two_versions(tiny_model_dirs, tmp_path)


def _two_versions(tiny_model_dirs, tmp_path):
    first = model_version_register(model_dir=tiny_model_dirs[0])
    swapped = tmp_path / "swapped"
    shutil.copytree(tiny_model_dirs[0], swapped)
    classes = json.loads((swapped / CLASSES_FILE).read_text())
    (swapped / CLASSES_FILE).write_text(json.dumps(list(reversed(classes))))
    second = model_version_register(model_dir=swapped)
    tiny_dataset(tmp_path / "data", seed=7, per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    images = list(InspectionImage.objects.order_by("pk"))
    snapshot = DatasetSnapshot.objects.create(image_count=4, counts={}, checksum="0" * 64)
    for image in images[:2] + images[-2:]:  # two of each class in the test split
        DatasetSnapshotItem.objects.create(snapshot=snapshot, image=image, label=image.label, split="test")
    TrainingRunFactory(snapshot=snapshot, model_version=second)
    return first, second


@pytest.fixture
def get(django_capture_on_commit_callbacks):
    def get(client, url):
        with django_capture_on_commit_callbacks(execute=True):
            return client.get(url)
    return get


def _url(a: int, b: int, query: str = "") -> str:
    return f"/api/v1/model-versions/{a}/compare/{b}/{query}"


def _run_queued(no_queue) -> str:
    (name, kwargs, queue), = [m for m in no_queue if m[0] == task_names.COMPARE_MODEL_VERSIONS]
    assert queue == task_names.INFERENCE_QUEUE
    no_queue.clear()
    return version_comparison_compute(**kwargs)


def test_computes_once_then_answers_side_by_side_in_either_order(versions, no_queue, get):
    first, second = versions
    client = client_for("viewer")
    pending = get(client, _url(first.pk, second.pk))
    assert pending.status_code == 202
    body = pending.json()
    assert body["status"] == "computing"
    assert body["image_set"]["test_split_images"] == 4 and body["image_set"]["newer_labelled_images"] == 16
    # Asking again while it computes queues nothing more.
    get(client, _url(first.pk, second.pk))
    assert _run_queued(no_queue) == "ready"

    body = get(client, _url(first.pk, second.pk, "?page_size=5")).json()
    assert body["status"] == "ready" and body["first"]["id"] == first.pk and body["second"]["id"] == second.pk
    assert body["image_set"]["total"] == 20 and body["image_set"]["training_run"] is not None
    assert body["classes"] == first.classes
    # Every prediction renamed: whatever the first gets right the second gets wrong.
    assert body["accuracy"]["first"] + body["accuracy"]["second"] == pytest.approx(1.0)
    assert body["accuracy"]["first"] >= 0.8
    row = {r["name"]: r for r in body["per_class"]}["crazing"]
    assert row["known_by"] == "both" and row["support"] == 10
    assert row["delta"]["recall"] == pytest.approx(row["second"]["recall"] - row["first"]["recall"])
    matrices = body["confusion_matrices"]
    assert sum(map(sum, matrices["first"])) == 20
    assert matrices["difference"] == [[b - a for a, b in zip(ra, rb)]
                                      for ra, rb in zip(matrices["first"], matrices["second"])]
    disagreements = body["disagreements"]
    assert disagreements["count"] == 20 and len(disagreements["results"]) == 5
    one = disagreements["results"][0]
    assert one["first"]["label"] != one["second"]["label"]
    assert 0 <= one["first"]["confidence"] <= 1 and one["true_label"] in first.classes
    assert one["review_url"].endswith(f"/review/{one['image']}/")

    # The other order reuses the stored predictions: nothing queued, the deltas turn round.
    swapped = get(client, _url(second.pk, first.pk)).json()
    assert no_queue == []
    assert swapped["accuracy"]["delta"] == pytest.approx(-body["accuracy"]["delta"])
    assert swapped["confusion_matrices"]["first"] == matrices["second"]


def test_a_new_label_means_a_new_computation(versions, no_queue, tmp_path, get):
    first, second = versions
    client = client_for("qa")
    get(client, _url(first.pk, second.pk))
    fingerprint = get(client, _url(first.pk, second.pk)).json()["image_set"]["fingerprint"]
    tiny_dataset(tmp_path / "more", seed=8, per_class=1)
    dataset_import_folder(root=tmp_path / "more")
    response = get(client, _url(first.pk, second.pk))
    assert response.status_code == 202
    assert response.json()["image_set"]["newer_labelled_images"] == 18
    assert response.json()["image_set"]["fingerprint"] != fingerprint
    # The message for the old image set finds it changed and stores nothing.
    stale = [m for m in no_queue if m[1]["fingerprint"] == fingerprint]
    assert version_comparison_compute(**stale[0][1]) == "stale"


def test_a_version_whose_artefact_is_broken_answers_failed(no_queue, get):
    first, second = ModelVersionFactory(), ModelVersionFactory()  # no files in storage
    InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import")
    tiny_first = client_for("ml_admin")
    assert get(tiny_first, _url(first.pk, second.pk)).status_code == 202
    assert _run_queued(no_queue) == "failed"
    body = get(tiny_first, _url(first.pk, second.pk)).json()
    assert body["status"] == "failed" and "model folder not found" in body["error"]
    assert body["image_set"]["newer_labelled_images"] == 1


@pytest.mark.parametrize("role", [*ROLES, "superuser"])
def test_every_role_reads_a_comparison(role, no_queue):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    assert client_for(role).get(_url(first.pk, second.pk)).status_code == 202


def test_anonymous_is_refused():
    first, second = ModelVersionFactory(), ModelVersionFactory()
    assert_error(client_for(None).get(_url(first.pk, second.pk)), 401)


def test_bad_input_in_the_error_shape(no_queue, get):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    client = client_for("viewer")
    assert "987654" in assert_error(get(client, _url(first.pk, 987654)), 404, "not_found")["message"]
    assert_error(get(client, _url(987654, second.pk)), 404, "not_found")
    assert_error(get(client, _url(first.pk, first.pk)), 400, "same_version")
    assert_error(get(client, _url(first.pk, second.pk, "?page_size=100000")), 400)
    assert_error(get(client, _url(first.pk, second.pk, "?page=0")), 400)
    assert no_queue == []


@pytest.mark.django_db(transaction=True)  # the message is tried at the request's own commit, as in production
def test_an_unreachable_broker_is_a_503_and_nothing_is_left_waiting(monkeypatch):
    def refuse(name, *, kwargs, queue):
        raise ConnectionError("broker down")

    monkeypatch.setattr("inspections.queueing._send", refuse)
    first, second = ModelVersionFactory(), ModelVersionFactory()
    client = client_for("viewer")
    assert_error(client.get(_url(first.pk, second.pk)), 503, "queue_unavailable")
    sent = []
    monkeypatch.setattr("inspections.queueing._send", lambda name, *, kwargs, queue: sent.append(name))
    assert client.get(_url(first.pk, second.pk)).status_code == 202 and sent == [task_names.COMPARE_MODEL_VERSIONS]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_inference_worker_computes_the_comparison(celery_worker, tiny_model_dirs, tmp_path):
    first, second = _two_versions(tiny_model_dirs, tmp_path)
    client = client_for("viewer")
    assert client.get(_url(first.pk, second.pk)).status_code == 202
    ready = wait_for(lambda: (r := client.get(_url(first.pk, second.pk))).status_code == 200 and r, timeout=180, interval=1)
    assert ready.json()["status"] == "ready", celery_worker.log_tail()
    assert ready.json()["disagreements"]["count"] == 20
