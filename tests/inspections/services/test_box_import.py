"""import_dataset reads defect boxes that come with the images: Pascal VOC XML and YOLO text, found
beside the images, in a labels/ tree or in the folders given; bad boxes and files are counted
with their reason and the good ones kept."""

from __future__ import annotations

import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inspections.catalog.services.box_import import BoxSources
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import DefectBox, DefectClass, InspectionImage
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db

NEU_DET = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "neu-det-annotations"


def _image(path: Path, seed: int, size=(200, 100)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed=seed, size=size))
    return path


def _voc(objects: list[tuple[str, tuple]], width=200, height=100) -> str:
    parts = [f"<annotation><filename>x.jpg</filename><size><width>{width}</width><height>{height}</height>"
             "<depth>1</depth></size>"]
    for name, (xmin, ymin, xmax, ymax) in objects:
        parts.append(f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
                     f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def _boxes(image_name: str) -> list[tuple[str, list[float]]]:
    image = InspectionImage.objects.get(original_name=image_name)
    return [(b.label.name, [b.x0, b.y0, b.x1, b.y1]) for b in DefectBox.objects.filter(image=image).order_by("id")]


def test_voc_files_beside_the_images(tmp_path):
    root = tmp_path / "data"
    _image(root / "crazing" / "a.png", 1)
    (root / "crazing" / "a.xml").write_text(_voc([("crazing", (1, 1, 100, 50)), ("inclusion", (101, 51, 200, 100))]))
    _image(root / "crazing" / "b.png", 2)
    report = dataset_import_folder(root=root).boxes
    assert _boxes("a.png") == [("crazing", [0.0, 0.0, 0.5, 0.5]), ("inclusion", [0.5, 0.5, 1.0, 1.0])]
    assert _boxes("b.png") == []
    assert (report.read, report.files, report.images_with_boxes, report.images_without_boxes) == (2, 1, 1, 1)
    assert not report.refused
    assert set(DefectBox.objects.values_list("source", flat=True)) == {"import"}


def test_bad_voc_boxes_and_files_are_counted_and_the_good_ones_kept(tmp_path):
    root = tmp_path / "data"
    for n in range(5):
        _image(root / "patches" / f"p{n}.png", 10 + n)
    (root / "patches" / "p0.xml").write_text(_voc([
        ("patches", (1, 1, 50, 50)),          # good
        ("patches", (1, 1, 201, 50)),         # past the right edge
        ("patches", (-5, 1, 50, 50)),         # before the left edge
        ("patches", (60, 1, 50, 50)),         # inverted
        ("patches", ("nan", 1, 50, 50)),      # NaN
        ("patches", ("wide", 1, 50, 50)),     # not a number
        ("no_such_defect", (1, 1, 50, 50)),   # unknown class
    ]))
    (root / "patches" / "p1.xml").write_text("<annotation><object><name>patches</name>")  # truncated
    (root / "patches" / "p2.xml").write_text('<!DOCTYPE a [<!ENTITY x "y">]><annotation/>')
    (root / "patches" / "p3.xml").write_text("<html><body/></html>")
    (root / "patches" / "p4.xml").write_bytes(b"\xff\xfe\x00<annotation/>")
    report = dataset_import_folder(root=root).boxes
    assert _boxes("p0.png") == [("patches", [0.0, 0.0, 0.25, 0.5])]
    assert dict(report.refused) == {"outside_image": 2, "bad_numbers": 3, "unknown_class": 1, "malformed_file": 4}
    assert report.read == 1 and report.images_with_boxes == 1 and report.images_without_boxes == 4
    assert any("p1.xml" in path and "not well-formed" in why for path, why in report.refused_examples)
    assert InspectionImage.objects.count() == 5  # bad annotations never stop the images


def test_yolo_in_a_sibling_labels_tree_with_a_class_list(tmp_path):
    # The CR7-DET layout: images/<class>/<name>.jpg beside labels/<class>/<name>.txt.
    images, labels = tmp_path / "set" / "images", tmp_path / "set" / "labels"
    _image(images / "dents" / "dents_1.png", 20)
    _image(images / "dents" / "dents_2.png", 21)
    _image(images / "pits" / "pits_1.png", 22)
    (labels / "dents").mkdir(parents=True)
    (labels / "dents" / "dents_1.txt").write_text(
        "1 0.5 0.5 0.2 0.4\n"        # good: dents
        "3 0.25 0.25 0.5 0.5\n"      # good: pits, on a dents image
        "\n"
        "1 0.95 0.5 0.2 0.2\n"       # past the right edge
        "1 nan 0.5 0.2 0.2\n"        # NaN
        "1 0.5 0.5 -0.2 0.2\n"       # negative width
        "1 0.5 0.5 0.2\n"            # a field short
        "x 0.5 0.5 0.2 0.2\n"        # class id not a number
        "9 0.5 0.5 0.2 0.2\n"        # no class 9
    )
    (labels / "dents" / "dents_2.txt").write_text("")
    report = dataset_import_folder(root=images, boxes=BoxSources(
        yolo_classes=("inclusions", "dents", "oil_spots", "pits", "punching", "linear", "macular"))).boxes
    assert _boxes("dents_1.png") == [("dents", pytest.approx([0.4, 0.3, 0.6, 0.7])),
                                     ("pits", pytest.approx([0.0, 0.0, 0.5, 0.5]))]
    assert dict(report.refused) == {"outside_image": 1, "bad_numbers": 4, "unknown_class": 1}
    assert (report.read, report.images_with_boxes, report.images_without_boxes) == (2, 1, 2)
    # A class list given with the boxes declares its classes.
    assert DefectClass.objects.filter(name__in=["oil_spots", "macular"]).count() == 2


def test_yolo_from_a_given_folder_with_classes_txt_and_an_unknown_name(tmp_path):
    root, labels = tmp_path / "data", tmp_path / "elsewhere"
    _image(root / "dents" / "d.png", 30)
    (labels / "dents").mkdir(parents=True)
    (labels / "classes.txt").write_text("dents\nEdge Crack\n")
    (labels / "dents" / "d.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    report = dataset_import_folder(root=root, boxes=BoxSources(yolo_dir=labels)).boxes
    assert _boxes("d.png") == [("dents", [0.25, 0.25, 0.75, 0.75])] and report.read == 1
    assert DefectClass.objects.filter(name="edge_crack").exists()


def test_yolo_files_without_class_names_stop_the_import(tmp_path):
    root = tmp_path / "data"
    _image(root / "dents" / "d.png", 40)
    (root / "dents" / "d.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    with pytest.raises(CommandError, match="--yolo-classes"):
        call_command("import_dataset", str(root), stdout=io.StringIO())
    assert not InspectionImage.objects.exists()


def test_a_missing_boxes_folder_stops_the_import(tmp_path):
    root = tmp_path / "data"
    _image(root / "dents" / "d.png", 41)
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_dataset", str(root), "--boxes-voc", str(tmp_path / "nowhere"), stdout=io.StringIO())
    assert not InspectionImage.objects.exists()


def test_a_second_import_adds_no_second_copy_of_the_boxes(tmp_path):
    root = tmp_path / "data"
    _image(root / "crazing" / "a.png", 50)
    (root / "crazing" / "a.xml").write_text(_voc([("crazing", (1, 1, 100, 50))]))
    dataset_import_folder(root=root)
    again = dataset_import_folder(root=root).boxes
    assert DefectBox.objects.count() == 1
    assert (again.read, again.images_already_boxed) == (0, 1)


def test_the_command_reports_the_boxes(tmp_path):
    root = tmp_path / "data"
    _image(root / "crazing" / "a.png", 60)
    _image(root / "crazing" / "b.png", 61)
    (root / "crazing" / "a.xml").write_text(_voc([("crazing", (1, 1, 100, 50)), ("crazing", (1, 1, 999, 50))]))
    out = io.StringIO()
    call_command("import_dataset", str(root), stdout=out)
    text = out.getvalue()
    assert "boxes: 1 read on 1 images from 1 files, 1 refused, 1 images without boxes" in text
    assert "boxes refused (outside the image): 1" in text
    assert "a.xml" in text


@pytest.mark.skipif(not NEU_DET.is_dir(), reason=f"the NEU-DET annotations are not at {NEU_DET}")
def test_real_neu_det_annotations_for_a_few_neu_images(tmp_path, neu_dir):
    root = tmp_path / "neu"
    picked = {"crazing": "Cr_12.bmp", "inclusion": "In_7.bmp", "scratches": "Sc_108.bmp"}
    for label, name in picked.items():
        (root / label).mkdir(parents=True)
        shutil.copy(neu_dir / label / name, root / label / name)
    out = io.StringIO()
    call_command("import_dataset", str(root), "--boxes-voc", str(NEU_DET), stdout=out)
    expected = {}
    for label, name in picked.items():
        xml = ET.parse(NEU_DET / f"{label}_{name.split('_')[1].split('.')[0]}.xml").getroot()
        expected[name] = sorted(o.findtext("name") for o in xml.iter("object"))
    for name, labels in expected.items():
        assert sorted(label for label, _ in _boxes(name)) == labels
    assert "inclusion" in expected["Sc_108.bmp"]  # a scratches frame that also shows an inclusion
    # crazing_12.xml's first box: xmin 1, ymin 1, xmax 141, ymax 50 on 200 x 200 pixels.
    assert _boxes("Cr_12.bmp")[0] == ("crazing", [0.0, 0.0, 0.705, 0.25])
    total = sum(len(v) for v in expected.values())
    assert f"boxes: {total} read on 3 images from 3 files, 0 refused, 0 images without boxes" in out.getvalue()


CR7_DET = NEU_DET.parent / "cr7-det"


@pytest.mark.skipif(not CR7_DET.is_dir(), reason=f"the CR7-DET set is not at {CR7_DET}")
def test_real_cr7_det_yolo_labels_in_the_sibling_labels_tree(tmp_path):
    root = tmp_path / "cr7" / "images"
    names = [("dents", "dents_1"), ("pits", "pits_1")]
    expected = 0
    for label, stem in names:
        (root / label).mkdir(parents=True)
        (tmp_path / "cr7" / "labels" / label).mkdir(parents=True)
        shutil.copy(CR7_DET / "images" / label / f"{stem}.jpg", root / label / f"{stem}.jpg")
        text = (CR7_DET / "labels" / label / f"{stem}.txt").read_text()
        (tmp_path / "cr7" / "labels" / label / f"{stem}.txt").write_text(text)
        expected += len([line for line in text.splitlines() if line.strip()])
    out = io.StringIO()
    call_command("import_dataset", str(root), "--yolo-classes",
                 "inclusions,dents,oil_spots,pits,punching,linear,macular", stdout=out)
    assert DefectBox.objects.count() == expected > 0
    assert set(DefectBox.objects.filter(image__original_name="dents_1.jpg").values_list("label__name", flat=True)) \
        == {"dents"}
    assert f"boxes: {expected} read on 2 images from 2 files, 0 refused" in out.getvalue()


@pytest.mark.skipif(not CR7_DET.is_dir(), reason=f"the CR7-DET set is not at {CR7_DET}")
def test_annotations_folder_names_yolo_ids_by_its_class_folders(tmp_path):
    """``--annotations ADIR`` (ARCHITECTURE's name): YOLO without a class list, named from where each id occurs."""
    root = tmp_path / "images"
    for label, stem in (("dents", "dents_1"), ("pits", "pits_1")):
        (root / label).mkdir(parents=True)
        shutil.copy(CR7_DET / "images" / label / f"{stem}.jpg", root / label / f"{stem}.jpg")
    out = io.StringIO()
    call_command("import_dataset", str(root), "--annotations", str(CR7_DET / "labels"), stdout=out)
    assert set(DefectBox.objects.filter(image__original_name="pits_1.jpg").values_list("label__name", flat=True)) \
        == {"pits"}
    assert "0 refused" in out.getvalue()


def test_annotations_folder_with_voc_files_reads_them_as_voc(tmp_path):
    root = tmp_path / "data"
    _image(root / "crazing" / "Cr_7.png", 60)
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "crazing_7.xml").write_text(_voc([("crazing", (11, 21, 110, 60))]))
    call_command("import_dataset", str(root), "--annotations", str(tmp_path / "ann"), stdout=io.StringIO())
    assert DefectBox.objects.get().label.name == "crazing"
    with pytest.raises(CommandError, match="annotations folder not found"):
        call_command("import_dataset", str(root), "--annotations", str(tmp_path / "missing"), stdout=io.StringIO())
