"""The dataset export carries the defect boxes as COCO JSON and YOLO text, and import_dataset reads
the YOLO boxes of an unzipped export back."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command

from inspections.models import DefectBox, DefectClass
from inspections.ops.services.dataset_export import COCO_FILE
from inspections.review.services.boxes import boxes_change
from inspections.review.services.reviews import review_exclude
from tests.factories import InspectionImageFactory, UserFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def boxed():
    """Three labelled 200 x 100 images: two with boxes (one of them excluded), one without."""
    qa = UserFactory(roles=["qa"])
    classes = {name: DefectClass.objects.get(name=name) for name in ("crazing", "scratches")}
    first, second, bare = (InspectionImageFactory(width=200, height=100, label=classes[label], label_source="import",
                                                  split="train")
                           for label in ("scratches", "crazing", "crazing"))
    boxes_change(image=first, expected_version=0, actor=qa, changes=[
        {"op": "add", "label": "scratches", "box": [0.1, 0.2, 0.5, 0.6]},
        {"op": "add", "label": "inclusion", "box": [0.6, 0.0, 1.0, 0.25]},
        {"op": "add", "label": "patches", "box": [0.0, 0.0, 0.1, 0.1]},
    ])
    boxes_change(image=first, expected_version=1, actor=qa,
                 changes=[{"op": "delete", "id": DefectBox.objects.get(label__name="patches").pk}])
    boxes_change(image=second, expected_version=0, actor=qa,
                 changes=[{"op": "add", "label": "crazing", "box": [0.25, 0.25, 0.75, 0.75]}])
    review_exclude(image=second, reviewer=qa, reason="test shot")
    return first, second, bare


def _export() -> zipfile.ZipFile:
    response = client_for("ml_admin").get("/api/v1/dataset-export/")
    assert response.status_code == 200
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_export_holds_coco_and_yolo_boxes(boxed):
    first, second, bare = boxed
    archive = _export()
    coco = json.loads(archive.read(COCO_FILE))
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    assert {i["id"]: (i["file_name"], i["width"], i["height"]) for i in coco["images"]} == {
        first.pk: (f"scratches/{first.sha256}.png", 200, 100),
        second.pk: (f".excluded/crazing/{second.sha256}.png", 200, 100),
        bare.pk: (f"crazing/{bare.sha256}.png", 200, 100),
    }
    annotations = sorted((a["image_id"], categories[a["category_id"]], a["bbox"]) for a in coco["annotations"])
    assert annotations == [  # pixels, [x, y, width, height]; the deleted box is not exported
        (first.pk, "inclusion", [120.0, 0.0, 80.0, 25.0]),
        (first.pk, "scratches", [20.0, 20.0, 80.0, 40.0]),
        (second.pk, "crazing", [50.0, 25.0, 100.0, 50.0]),
    ]
    names = archive.read("labels/classes.txt").decode().splitlines()
    assert [categories[i + 1] for i in range(len(names))] == names
    lines = archive.read(f"labels/scratches/{first.sha256}.txt").decode().splitlines()
    parsed = sorted((names[int(line.split()[0])], [float(v) for v in line.split()[1:]]) for line in lines)
    assert parsed == [("inclusion", pytest.approx([0.8, 0.125, 0.4, 0.25])),
                      ("scratches", pytest.approx([0.3, 0.4, 0.4, 0.4]))]
    assert f"labels/crazing/{bare.sha256}.txt" not in archive.namelist()


def test_an_export_imported_again_brings_its_boxes_back(boxed, tmp_path, monkeypatch):
    before = {(b.image.sha256, b.label.name): [b.x0, b.y0, b.x1, b.y1]
              for b in DefectBox.objects.filter(deleted_at__isnull=True).select_related("image", "label")}
    _export().extractall(tmp_path / "export")
    DefectBox.objects.all().delete()
    out = io.StringIO()
    monkeypatch.chdir(tmp_path)  # a folder named relatively, as on a command line
    call_command("import_dataset", "export", stdout=out)
    after = {(b.image.sha256, b.label.name): [b.x0, b.y0, b.x1, b.y1]
             for b in DefectBox.objects.select_related("image", "label")}
    assert after.keys() == before.keys()
    for key, box in before.items():
        assert after[key] == pytest.approx(box, abs=1e-7)
    assert set(DefectBox.objects.values_list("source", flat=True)) == {"import"}
    assert "boxes: 3 read on 2 images from 2 files, 0 refused, 1 images without boxes" in out.getvalue()
