"""GET dataset-export/, GET training-runs/{id}/snapshot/ and `export_dataset`: the labelled images as
a streamed folder-per-class zip with a manifest, and their round trip through `import_dataset`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections import Counter

import pytest
from django.core.management import call_command

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.catalog.services.dataset_manifest import FIELDS, MANIFEST_CSV, MANIFEST_JSON, SNAPSHOT_FILE
from inspections.catalog.services.images import image_upload
from inspections.models import DatasetSnapshotItem, InspectionImage, Prediction, Review, Split, TrainingRun
from inspections.ops.services.dataset_export import CHUNK_BYTES, COCO_FILE
from inspections.registry.services.training import training_run_start
from inspections.review.services.reviews import review_exclude, review_submit
from tests.factories import TrainingRunFactory, UserFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

ROTATED = {Split.TRAIN: Split.TEST, Split.VAL: Split.TRAIN, Split.TEST: Split.VAL}


@pytest.fixture
def labelled(tmp_path, settings) -> dict:
    """12 imported images of two classes; one relabelled by a reviewer, one excluded.

    Splits are rotated away from what the split rule gives, so only a manifest can restore them.
    A run's snapshot of so few images needs the readiness rule out of the way."""
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 0
    root = tmp_path / "source"
    for c, label in enumerate(("crazing", "inclusion")):
        (root / label).mkdir(parents=True)
        for i in range(6):
            (root / label / f"{label}-{i}.png").write_bytes(image_bytes(seed=700 + 10 * c + i))
    dataset_import_folder(root=root, source="line-7")
    for image in InspectionImage.objects.all():
        InspectionImage.objects.filter(pk=image.pk).update(split=ROTATED[image.split], external_id=f"coil-{image.pk}")
    reviewer = UserFactory(username="rita", roles=["qa"])
    images = list(InspectionImage.objects.order_by("id"))
    relabelled = review_submit(image=images[0], label_name="inclusion", reviewer=reviewer).image
    excluded = review_exclude(image=images[1], reviewer=reviewer, reason="a glove in the frame").image
    return {"relabelled": relabelled, "excluded": excluded, "reviewer": reviewer}


def _download(query: str = "", role: str = "ml_admin"):
    return client_for(role).get(f"/api/v1/dataset-export/{query}")


def _zip_of(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.content[:300] if not response.streaming else ""
    assert response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def _manifest(archive: zipfile.ZipFile) -> list[dict]:
    return list(csv.DictReader(io.StringIO(archive.read(MANIFEST_CSV).decode())))


def test_export_holds_each_labelled_image_in_its_class_folder_with_a_manifest(labelled):
    archive = _zip_of(_download())
    images = InspectionImage.objects.filter(label__isnull=False)
    expected = {
        (f".excluded/{i.label.name}" if i.excluded else i.label.name) + f"/{i.sha256}.png" for i in images
    }
    # No image has defect boxes: the box documents are there, with no per-image YOLO file.
    assert set(archive.namelist()) == expected | {MANIFEST_CSV, MANIFEST_JSON, COCO_FILE, "labels/classes.txt"}
    for image in images:
        assert archive.read(next(n for n in expected if image.sha256 in n)) == image.file.open("rb").read()
    rows = {row["sha256"]: row for row in _manifest(archive)}
    assert list(_manifest(archive)[0]) == list(FIELDS)
    for image in images:
        row = rows[image.sha256]
        assert (row["label"], row["split"], row["source"], row["external_id"], row["label_version"]) == (
            image.label.name, image.split, "line-7", image.external_id, str(image.label_version))
    relabelled, excluded = rows[labelled["relabelled"].sha256], rows[labelled["excluded"].sha256]
    assert (relabelled["label"], relabelled["labelled_by"], relabelled["label_source"]) == ("inclusion", "rita", "review")
    assert relabelled["labelled_at"] == Review.objects.get(image=labelled["relabelled"]).created_at.isoformat()
    assert (excluded["excluded"], excluded["exclusion_reason"]) == ("true", "a glove in the frame")
    assert sum(row["excluded"] == "true" for row in rows.values()) == 1


def test_the_json_manifest_says_the_same_as_the_csv_with_counts(labelled):
    archive = _zip_of(_download())
    document = json.loads(archive.read(MANIFEST_JSON))
    assert [record["sha256"] for record in document["images"]] == [row["sha256"] for row in _manifest(archive)]
    assert document["image_count"] == 12
    assert sum(sum(splits.values()) for splits in document["counts"].values()) == 12
    assert document["counts"]["inclusion"] == dict(
        Counter(r["split"] for r in document["images"] if r["label"] == "inclusion"))


def test_one_split_or_one_class_only(labelled):
    test_only = _manifest(_zip_of(_download("?split=test")))
    assert test_only and {row["split"] for row in test_only} == {"test"}
    assert len(test_only) == InspectionImage.objects.filter(split="test", label__isnull=False).count()
    crazing = _manifest(_zip_of(_download("?label=crazing")))
    assert {row["label"] for row in crazing} == {"crazing"}
    assert len(crazing) == 5  # six imported, one relabelled to inclusion


@pytest.mark.parametrize("query, field", [("?split=holdout", "split"), ("?split=unassigned", "split"),
                                          ("?label=no-such-class", "label")])
def test_an_unknown_split_or_class_is_refused(labelled, query, field):
    error = assert_error(_download(query), 400, "invalid")
    assert field in error["details"]


@pytest.mark.parametrize("role", ["viewer", "integrator", "qa"])
def test_only_ml_admins_export(labelled, role):
    assert_error(_download(role=role), 403, "permission_denied")


def test_the_export_is_streamed_in_bounded_chunks(labelled, no_queue):
    big = image_bytes(seed=9, size=(1100, 1100))  # random noise: a PNG that stays ~1.2 MB
    image = image_upload(content=big, filename="wide.png", uploaded_by=None).image
    review_submit(image=image, label_name="crazing", reviewer=labelled["reviewer"])
    response = _download()
    assert response.streaming
    chunks = [len(chunk) for chunk in response.streaming_content]
    assert sum(chunks) > len(big)
    assert max(chunks) <= CHUNK_BYTES + 4096
    assert len(chunks) > len(big) // CHUNK_BYTES


def test_export_round_trips_into_an_empty_installation(labelled, tmp_path, settings):
    out = tmp_path / "export.zip"
    call_command("export_dataset", str(out), stdout=io.StringIO())
    before = {(i.sha256, i.label.name, i.split, i.source, i.external_id, i.excluded, i.exclusion_reason)
              for i in InspectionImage.objects.filter(label__isnull=False)}

    Review.objects.all().delete()
    Prediction.objects.all().delete()
    DatasetSnapshotItem.objects.all().delete()
    InspectionImage.objects.all().delete()
    settings.MEDIA_ROOT = tmp_path / "fresh-media"
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(out).extractall(unpacked)
    call_command("import_dataset", str(unpacked), stdout=io.StringIO())

    after = {(i.sha256, i.label.name, i.split, i.source, i.external_id, i.excluded, i.exclusion_reason)
             for i in InspectionImage.objects.all()}
    assert after == before
    for image in InspectionImage.objects.all():
        assert hashlib.sha256(image.file.open("rb").read()).hexdigest() == image.sha256


def test_the_command_refuses_an_unknown_class_and_writes_nothing(labelled, tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="no defect class"):
        call_command("export_dataset", str(tmp_path / "x.zip"), "--label", "nope", stdout=io.StringIO())
    assert not list(tmp_path.glob("x.zip*"))


# --- A training run's frozen snapshot ----------------------------------------------------------

def _snapshot_zip(run_id: int, role: str = "ml_admin"):
    return client_for(role).get(f"/api/v1/training-runs/{run_id}/snapshot/")


def test_a_runs_snapshot_holds_the_labels_and_splits_it_was_frozen_with(labelled, no_queue):
    run = training_run_start(requested_by=None, params={}, enqueue=False)
    changed = InspectionImage.objects.filter(excluded=False, label__name="crazing").order_by("id").first()
    review_submit(image=changed, label_name="inclusion", reviewer=labelled["reviewer"])  # after the freeze

    archive = _zip_of(_snapshot_zip(run.pk))
    rows = {row["sha256"]: row for row in _manifest(archive)}
    items = run.snapshot.items.select_related("image", "label")
    assert {sha: (row["label"], row["split"]) for sha, row in rows.items()} == {
        item.image.sha256: (item.label.name, item.split) for item in items}
    assert rows[changed.sha256]["label"] == "crazing"
    assert rows[changed.sha256]["label_version"] == "0"
    assert labelled["excluded"].sha256 not in rows
    facts = json.loads(archive.read(SNAPSHOT_FILE))
    ids = dict(InspectionImage.objects.values_list("sha256", "id"))
    digest = hashlib.sha256()
    for sha, row in sorted(rows.items(), key=lambda pair: ids[pair[0]]):
        digest.update(f"{sha}:{row['label']}:{row['split']}\n".encode())
    assert (facts["checksum"], facts["snapshot"], facts["training_run"]) == (digest.hexdigest(), run.snapshot_id, run.pk)


def test_the_command_exports_a_runs_snapshot(labelled, no_queue, tmp_path):
    run = training_run_start(requested_by=None, params={}, enqueue=False)
    out = tmp_path / "snapshot.zip"
    call_command("export_dataset", str(out), "--snapshot", str(run.pk), stdout=io.StringIO())
    assert len(_manifest(zipfile.ZipFile(out))) == run.snapshot.image_count == 11


def test_a_run_without_a_snapshot_or_an_unknown_run_is_404(labelled):
    assert_error(_snapshot_zip(TrainingRunFactory().pk), 404, "not_found")
    assert_error(_snapshot_zip(999_999), 404, "not_found")


@pytest.mark.parametrize("role", ["viewer", "integrator", "qa"])
def test_only_ml_admins_export_a_snapshot(labelled, role, no_queue):
    run = training_run_start(requested_by=None, params={}, enqueue=False)
    assert_error(_snapshot_zip(run.pk, role), 403, "permission_denied")
    assert TrainingRun.objects.filter(pk=run.pk).exists()
