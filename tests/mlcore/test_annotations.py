"""Boxes for ``python -m mlcore train --annotations``: VOC (NEU-DET naming) and YOLO, ids named by
classes.txt or by the class folders they occur in; bad lines skipped and counted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlcore.annotations import attach_annotations, infer_yolo_class_names
from mlcore.io import Sample

VOC = ("<annotation><size><width>200</width><height>100</height></size>"
       "<object><name>crazing</name><bndbox><xmin>21</xmin><ymin>11</ymin><xmax>120</xmax><ymax>60</ymax>"
       "</bndbox></object><object><name>crazing</name><bndbox><xmin>50</xmin><ymin>50</ymin><xmax>40</xmax>"
       "<ymax>60</ymax></bndbox></object></annotation>")


def _sample(path, label):
    return Sample(path=str(path), label=label, split="train")


def test_voc_with_neu_det_names_gives_fractions_and_skips_inverted_boxes(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "crazing_12.xml").write_text(VOC)
    samples, report = attach_annotations([_sample(tmp_path / "crazing" / "Cr_12.bmp", "crazing"),
                                          _sample(tmp_path / "crazing" / "Cr_13.bmp", "crazing")], tmp_path / "ann")
    assert samples[0].boxes == (("crazing", 0.1, 0.1, 0.6, 0.6),)
    assert samples[1].boxes is None  # no file: unknown, not empty
    assert report.to_dict() == {"files": 1, "boxes": 1, "skipped": {"bad_numbers": 1},
                                "images_without_annotations": 1}


def test_yolo_ids_are_named_by_the_folder_they_mostly_occur_in(tmp_path):
    labels = tmp_path / "labels"
    for folder, lines in {"dents": ["1 0.5 0.5 0.2 0.2", "1 0.2 0.2 0.1 0.1", "0 0.5 0.5 0.1 0.1"],
                          "pits": ["0 0.5 0.5 0.2 0.2", "0 0.3 0.3 0.1 0.1"]}.items():
        (labels / folder).mkdir(parents=True)
        (labels / folder / f"{folder}_1.txt").write_text("\n".join(lines) + "\n")
    assert infer_yolo_class_names(labels) == ["pits", "dents"]
    samples, report = attach_annotations([_sample(tmp_path / "dents" / "dents_1.jpg", "dents")], labels)
    assert [box[0] for box in samples[0].boxes] == ["dents", "dents", "pits"]
    assert samples[0].boxes[0] == ("dents", pytest.approx(0.4), pytest.approx(0.4), pytest.approx(0.6), pytest.approx(0.6))
    (labels / "classes.txt").write_text("a\nb\n")  # a class list wins over the inference
    samples, _ = attach_annotations([_sample(tmp_path / "dents" / "dents_1.jpg", "dents")], labels)
    assert [box[0] for box in samples[0].boxes] == ["b", "b", "a"]


def test_yolo_ids_that_no_folder_claims_clearly_are_not_guessed(tmp_path):
    labels = tmp_path / "labels"
    for folder in ("dents", "pits"):
        (labels / folder).mkdir(parents=True)
        (labels / folder / "x.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert infer_yolo_class_names(labels) is None
    with pytest.raises(ValueError, match="classes.txt"):
        attach_annotations([_sample(tmp_path / "dents" / "x.jpg", "dents")], labels)


def test_predict_json_gives_boxes_in_image_pixels(boxed_model):
    model_dir, samples = boxed_model
    path = next(s.path for s in samples if s.split == "test")
    completed = subprocess.run([sys.executable, "-m", "mlcore", "predict", "--model", str(model_dir), "--json", path],
                               capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    line = json.loads(completed.stdout.strip().splitlines()[-1])
    assert line["file"] == path and line["boxes"]
    for box in line["boxes"]:
        assert set(box) == {"label", "score", "box"}
        assert all(0 <= v <= 48 for v in box["box"]) and box["box"][2] > box["box"][0]
    assert any(v > 1.5 for box in line["boxes"] for v in box["box"])  # pixels, not fractions
