"""The detection head: targets and decoding, the COCO metrics, and a small model trained end to end
(Keras and the TFLite serving copy giving the same boxes)."""

import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.detection import CENTRE_SIZE, BoxDecoding, DetectedBox, decode, detection_metrics
from mlcore.training.detection_targets import encode_targets, flip_boxes

CLASSES = ["bright", "dark"]


def ltrb_map(heat: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A detection map whose heat is ``heat`` and whose box channels hold each cell's distances to
    ``target``'s edges, as a perfect head would give."""
    grid = heat.shape[0]
    ys, xs = np.mgrid[0:grid, 0:grid]
    cx, cy = (xs + 0.5) / grid, (ys + 0.5) / grid
    distances = np.stack([cx - target[..., 0], cy - target[..., 1], target[..., 2] - cx, target[..., 3] - cy], -1)
    return np.concatenate([heat, distances], axis=-1).astype(np.float32)


def test_encoded_box_decodes_back_from_its_centre_cell():
    grid = 8
    box = (0, 0.25, 0.125, 0.75, 0.375)  # class 0, 0.5 wide and 0.25 high, centre (0.5, 0.25)
    heat, target, weight = encode_targets([box], grid=grid, num_classes=2)
    assert heat[2, 4, 0] == 1.0 and heat[..., 1].max() == 0.0
    assert weight.sum() == pytest.approx(1.0) and weight[2, 4] == weight.max()
    assert np.all(target[weight > 0] == np.array(box[1:], np.float32))
    found = decode(ltrb_map(heat, target), CLASSES, min_score=0.5)
    assert len(found) == 1 and found[0].label == "bright" and found[0].score == pytest.approx(1.0)
    assert found[0].box == pytest.approx(box[1:], abs=1e-6)


def test_a_smaller_box_owns_the_cells_it_shares_with_a_larger_one():
    large, small = (0, 0.0, 0.0, 1.0, 1.0), (1, 0.4, 0.4, 0.6, 0.6)
    heat, target, weight = encode_targets([small, large], grid=10, num_classes=2)
    assert heat[5, 5, 1] == 1.0 and heat[5, 5, 0] == 1.0   # both centres are peaks of their own class
    assert tuple(target[5, 5]) == pytest.approx(small[1:])
    owned_by_large = np.all(target == np.array(large[1:], np.float32), axis=-1)
    assert owned_by_large.any() and weight[owned_by_large].sum() < 1.0   # it lost the cells the small box took


def test_a_box_smaller_than_a_cell_still_regresses_at_its_centre():
    heat, target, weight = encode_targets([(0, 0.51, 0.51, 0.53, 0.53)], grid=4, num_classes=1)
    assert weight[2, 2] == pytest.approx(1.0) and weight.sum() == pytest.approx(1.0)


def test_decode_keeps_local_maxima_only_best_first():
    detection_map = np.zeros((6, 6, 2 + 4), np.float32)
    detection_map[..., 2:] = 0.1
    detection_map[1, 1, 0], detection_map[1, 2, 0] = 0.9, 0.6   # neighbours: only the peak counts
    detection_map[4, 4, 1] = 0.7
    found = decode(detection_map, CLASSES)
    assert [(b.label, round(b.score, 2)) for b in found] == [("bright", 0.9), ("dark", 0.7)]
    assert all(0 <= v <= 1 for b in found for v in b.box)


def test_class_aware_nms_suppresses_overlaps_within_a_class_only():
    detection_map = np.zeros((8, 8, 2 + 4), np.float32)
    detection_map[..., 2:] = 0.2                           # every cell: a box 0.4 wide around its centre
    detection_map[2, 2, 0], detection_map[2, 4, 0] = 0.9, 0.8   # two peaks 0.25 apart: IoU 0.23
    detection_map[2, 3, 1] = 0.7                           # another class between them
    peaks = decode(detection_map, CLASSES)
    assert [b.score for b in peaks] == pytest.approx([0.9, 0.8, 0.7])
    kept = decode(detection_map, CLASSES, nms_iou=0.2)
    assert [(b.label, round(b.score, 2)) for b in kept] == [("bright", 0.9), ("dark", 0.7)]
    assert len(decode(detection_map, CLASSES, nms_iou=0.3)) == 3   # the threshold is respected


def test_heads_from_before_the_ltrb_form_decode_as_they_always_did():
    decoding = BoxDecoding.from_facts({"classes": CLASSES, "grid": 8})   # an old detection.json
    assert decoding.encoding == CENTRE_SIZE and decoding.nms_iou is None
    detection_map = np.zeros((8, 8, 2 + 4), np.float32)
    detection_map[2, 4, 0] = 1.0
    detection_map[2, 4, 2:] = (0.5, 0.25, 0.0, 0.0)   # width, height, the centre's offset in its cell
    (found,) = decoding.decode(detection_map, CLASSES)
    assert found.box == pytest.approx((0.25, 0.125, 0.75, 0.375))
    recorded = BoxDecoding(nms_iou=0.5).to_dict()
    assert BoxDecoding.from_facts({"decoding": recorded}) == BoxDecoding(nms_iou=0.5)


def test_flips_mirror_boxes():
    box = [(1, 0.1, 0.2, 0.3, 0.6)]
    assert flip_boxes(box, horizontal=True, vertical=False) == [(1, pytest.approx(0.7), 0.2, pytest.approx(0.9), 0.6)]
    assert flip_boxes(box, horizontal=False, vertical=True) == [(1, 0.1, pytest.approx(0.4), 0.3, pytest.approx(0.8))]


def test_metrics_come_from_pycocotools_and_rank_predictions():
    truth = [[("bright", 0.1, 0.1, 0.5, 0.5)], [("dark", 0.5, 0.5, 0.9, 0.9), ("bright", 0.0, 0.0, 0.2, 0.2)]]
    sizes = [(200, 200), (200, 100)]
    perfect = [[DetectedBox(label, tuple(box), 0.9) for label, *box in boxes] for boxes in truth]
    result = detection_metrics(truth, perfect, classes=CLASSES, sizes=sizes)
    assert result["implementation"] == "pycocotools"
    assert result["map50"] == pytest.approx(1.0) and result["map50_95"] == pytest.approx(1.0)
    assert set(result["per_class"]) == {"bright", "dark"} and result["per_class"]["bright"]["boxes"] == 2
    # Shifted by a third of its width: IoU 0.5 for that box, so AP@0.5:0.95 falls and the wrong class scores 0.
    shifted = [[DetectedBox("bright", (0.1 + 0.4 / 3, 0.1, 0.5 + 0.4 / 3, 0.5), 0.9)],
               [DetectedBox("bright", (0.5, 0.5, 0.9, 0.9), 0.9), DetectedBox("bright", (0.0, 0.0, 0.2, 0.2), 0.8)]]
    worse = detection_metrics(truth, shifted, classes=CLASSES, sizes=sizes)
    assert worse["per_class"]["dark"]["ap50"] == 0.0
    assert worse["per_class"]["bright"]["ap50_95"] < 0.9
    assert worse["map50"] < result["map50"]
    assert detection_metrics(truth, [[], []], classes=CLASSES, sizes=sizes)["map50"] == 0.0


def test_a_trained_head_finds_the_boxes_and_records_its_metrics(boxed_model):
    model_dir, _ = boxed_model
    detection = json.loads((model_dir / "metrics.json").read_text())["detection"]
    assert detection["implementation"] == "pycocotools" and detection["split"] == "test"
    assert detection["map50"] >= 0.5, detection
    assert set(detection["per_class"]) == set(CLASSES)
    facts = json.loads((model_dir / "detection.json").read_text())
    assert facts["classes"] == CLASSES and facts["epochs_run"] >= 1
    assert facts["decoding"]["encoding"] == "ltrb"
    assert str(facts["decoding"]["nms_iou"]) in facts["nms_validation_map50"]
    assert facts["finetuned_blocks"] and facts["best_epoch"] >= 1


def test_serving_copy_carries_the_boxes_with_parity(boxed_model):
    from mlcore.inference import Classifier
    from mlcore.io import load_image

    model_dir, samples = boxed_model
    serving = json.loads((model_dir / "config.json").read_text())["serving"]
    assert serving["runtime"] == "tflite" and serving["max_detection_map_difference"] <= 1e-3
    tflite = Classifier.load(model_dir)
    keras_only = Classifier.load(model_dir, runtime="keras")
    assert tflite.runtime == "tflite" and keras_only.runtime == "keras"
    images = [load_image(s.path) for s in samples if s.split == "test"]
    fast, slow = tflite.predict(images), keras_only.predict(images)
    assert any(r.boxes for r in fast)
    for a, b in zip(fast, slow):
        assert [box["label"] for box in a.boxes] == [box["label"] for box in b.boxes]
        for x, y in zip(a.boxes, b.boxes):
            assert x["box"] == pytest.approx(y["box"], abs=2e-3)
    assert all(set(box) == {"label", "box", "score"} for r in fast for box in r.boxes)


def test_without_enough_boxes_no_head_is_trained(tiny_trained):
    result, _ = tiny_trained
    assert result.metrics["detection"] == {"trained": False, "reason": "no training image has defect boxes"}
    assert not (Path(result.model_dir) / "detection.keras").exists()


def test_evaluation_runs_the_serving_forward_in_batches_and_keeps_each_images_boxes(tmp_path):
    from PIL import Image

    from mlcore.io import Sample
    from mlcore.training.detection import _predict_boxes

    sizes = [(16, 16)] * 4 + [(24, 16)]  # (width, height): one image of another shape
    samples = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"{index}.png"
        Image.new("L", size, color=index).save(path)  # the pixel value says which image it is
        samples.append(Sample(path=str(path), label=CLASSES[index % 2], split="test"))
    truth = [[(CLASSES[index % 2], 0.0, 0.0, 0.5, 0.5)] for index in range(len(sizes))]
    batches = []

    def forward(batch):
        batches.append(len(batch))
        maps = np.zeros((len(batch), 4, 4, len(CLASSES) + 4), np.float32)
        for row, image in enumerate(np.asarray(batch)):
            index = int(image.flat[0])
            maps[row, index % 4, 0, index % 2] = 0.9  # a peak in row (index % 4), of the image's class
            maps[row, index % 4, 0, 2:] = 0.1  # distances to the box's left, top, right and bottom edges
        return np.zeros((len(batch), 2)), np.zeros((len(batch), 3)), maps

    predicted, found_sizes, examples = _predict_boxes(forward, samples, truth, classes=CLASSES, batch_size=4)
    assert sorted(batches) == [1, 4]  # the four 16x16 images in one batch, the 24x16 one alone
    assert found_sizes == sizes
    for index, boxes in enumerate(predicted):
        assert [box.label for box in boxes] == [CLASSES[index % 2]]
        assert (boxes[0].box[1] + boxes[0].box[3]) / 2 == pytest.approx((index % 4 + 0.5) / 4)  # its own row
    assert [example[1] for example in examples] == truth[:2]  # one example per class first
