"""The full-integer serving copy: kept and served only when, on labelled validation images, it is
as good as the fp32 copy (accuracy, every class's recall, the OOD check's pass rate and order)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlcore import serving
from mlcore.artefact import CLASSES_FILE, CONFIG_FILE, OOD_FILE, SERVING_FILE, SERVING_INT8_FILE
from mlcore.inference import Classifier
from mlcore.ood import load_detector
from mlcore.serving import int8_check, int8_serving_export


def _probabilities(labels, classes=3, confidence=0.9):
    out = np.full((len(labels), classes), (1 - confidence) / (classes - 1), np.float32)
    out[np.arange(len(labels)), labels] = confidence
    return out


def _copies(labels, *, flip=(), features=None):
    """(reference, candidate) outputs: the candidate answers ``flip`` rows with the next class."""
    reference = _probabilities(labels)
    wrong = np.array(labels)
    for row in flip:
        wrong[row] = (wrong[row] + 1) % 3
    features = np.arange(len(labels), dtype=np.float32)[:, None] if features is None else features
    return (reference, features), (_probabilities(wrong), features.copy())


LABELS = np.array([0, 1, 2] * 200)


def _distances(features):
    return np.asarray(features, np.float32)[:, 0]


def test_a_copy_with_the_same_answers_passes():
    reference, candidate = _copies(LABELS)
    check = int8_check(labels=LABELS, reference=reference, candidate=candidate, num_classes=3,
                       distances=_distances, threshold=500.0)
    assert check["passed"], check
    assert check["accuracy_fp32"] == check["accuracy_int8"] == 1.0
    assert check["ood_distance_rank_correlation"] == pytest.approx(1.0)


def test_an_accuracy_drop_beyond_two_tenths_of_a_point_fails():
    reference, candidate = _copies(LABELS, flip=(0, 3))  # 2 of 600 wrong: 0.33 points
    check = int8_check(labels=LABELS, reference=reference, candidate=candidate, num_classes=3)
    assert not check["passed"] and "accuracy drops" in check["reasons"][0]


def test_one_class_losing_recall_fails_even_when_accuracy_holds(monkeypatch):
    monkeypatch.setattr(serving, "INT8_MAX_ACCURACY_DROP", 1.0)
    flips = tuple(range(0, 9, 3))  # three class-0 images of 200: 1.5 points of its recall
    reference, candidate = _copies(LABELS, flip=flips)
    check = int8_check(labels=LABELS, reference=reference, candidate=candidate, num_classes=3)
    assert not check["passed"] and any("recall" in reason for reason in check["reasons"])
    assert check["max_class_recall_drop"] == pytest.approx(0.015)


def test_ood_distances_that_move_past_the_threshold_or_reorder_fail():
    reference, _ = _copies(LABELS)
    shifted = (reference[0], reference[1] + 60.0)  # every distance 60 further: 10 % of images cross 500
    check = int8_check(labels=LABELS, reference=reference, candidate=shifted, num_classes=3,
                       distances=_distances, threshold=500.0)
    assert not check["passed"] and any("pass rate" in reason for reason in check["reasons"])

    shuffled = (reference[0], np.random.default_rng(0).permutation(reference[1]))
    check = int8_check(labels=LABELS, reference=reference, candidate=shuffled, num_classes=3,
                       distances=_distances, threshold=1e9)
    assert not check["passed"] and any("rank correlation" in reason for reason in check["reasons"])


@pytest.fixture
def model_copy(tiny_trained, tmp_path) -> Path:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_trained[0].model_dir, model_dir)
    (model_dir / SERVING_INT8_FILE).unlink(missing_ok=True)
    return model_dir


def _labelled_images(tiny_tools, count=24, seed=5):
    rng = np.random.default_rng(seed)
    labels = [i % len(tiny_tools.classes) for i in range(count)]
    return [tiny_tools.surface(tiny_tools.classes[label], rng) for label in labels], labels


def _export(model_dir, tiny_tools):
    images, labels = _labelled_images(tiny_tools)
    calibration, _ = _labelled_images(tiny_tools, count=30, seed=6)
    classes = json.loads((model_dir / CLASSES_FILE).read_text())
    detector = load_detector(model_dir / OOD_FILE)
    return int8_serving_export(model_dir=model_dir, calibration_images=calibration, check_images=images,
                               check_labels=labels, num_classes=len(classes), distances=detector.distances,
                               threshold=detector.threshold), images


def _loosen_quality_limits(monkeypatch) -> None:
    """On 24 images one flipped answer is 4 points: with the quality limits loosened, a test is
    about what happens after the quality check, not about the tiny model's quantisation error."""
    for name in ("INT8_MAX_ACCURACY_DROP", "INT8_MAX_RECALL_DROP", "INT8_MAX_PASS_RATE_CHANGE"):
        monkeypatch.setattr(serving, name, 1.0)
    monkeypatch.setattr(serving, "INT8_MIN_DISTANCE_RANK_CORRELATION", -1.0)


def test_a_passing_int8_copy_is_recorded_and_served(model_copy, tiny_tools, monkeypatch):
    _loosen_quality_limits(monkeypatch)
    monkeypatch.setattr(serving, "INT8_MIN_SPEEDUP", 0.0)
    outcome, images = _export(model_copy, tiny_tools)
    assert outcome["used"] and outcome["passed"], outcome
    config = json.loads((model_copy / CONFIG_FILE).read_text())["serving"]
    assert config["file"] == SERVING_INT8_FILE and config["precision"] == "int8"
    assert config["int8"]["images"] == 24 and "ood_pass_rate_int8" in config["int8"]
    assert (model_copy / SERVING_INT8_FILE).stat().st_size < 0.5 * (model_copy / SERVING_FILE).stat().st_size

    served = Classifier.load(model_copy)
    fp32 = Classifier.load(model_copy, runtime="tflite-fp32")
    assert (served.runtime, fp32.runtime) == ("tflite-int8", "tflite")
    int8_probabilities, _ = served.predict_arrays(images)
    fp32_probabilities, _ = fp32.predict_arrays(images)
    assert not np.array_equal(int8_probabilities, fp32_probabilities)  # really the other copy
    np.testing.assert_allclose(int8_probabilities, fp32_probabilities, atol=0.1)


def test_a_failing_int8_copy_is_removed_and_fp32_keeps_serving(model_copy, tiny_tools, monkeypatch):
    monkeypatch.setattr(serving, "INT8_MIN_DISTANCE_RANK_CORRELATION", 1.01)  # nothing can pass
    outcome, _ = _export(model_copy, tiny_tools)
    assert not outcome["used"] and not outcome["passed"]
    assert not (model_copy / SERVING_INT8_FILE).exists()
    config = json.loads((model_copy / CONFIG_FILE).read_text())["serving"]
    assert config["file"] == SERVING_FILE and config["precision"] == "fp32"
    assert config["int8"]["reasons"]
    assert Classifier.load(model_copy).runtime == "tflite"


def test_an_int8_copy_as_good_but_not_faster_is_not_served(model_copy, tiny_tools, monkeypatch):
    _loosen_quality_limits(monkeypatch)
    monkeypatch.setattr(serving, "INT8_MIN_SPEEDUP", 1000.0)
    outcome, _ = _export(model_copy, tiny_tools)
    assert not outcome["used"] and outcome["speedup_cpu"] > 0
    assert "speed" in outcome["reasons"][-1]
    assert not (model_copy / SERVING_INT8_FILE).exists()
    assert Classifier.load(model_copy).runtime == "tflite"


def test_without_a_verified_fp32_copy_no_int8_copy_is_made(model_copy, tiny_tools):
    config = json.loads((model_copy / CONFIG_FILE).read_text())
    config["serving"] = {"runtime": "keras", "reason": "test"}
    (model_copy / CONFIG_FILE).write_text(json.dumps(config))
    outcome, _ = _export(model_copy, tiny_tools)
    assert outcome == {"used": False, "reason": "no verified fp32 TFLite copy to compare with"}
    assert not (model_copy / SERVING_INT8_FILE).exists()


def test_unknown_runtime_names_are_refused(model_copy):
    with pytest.raises(ValueError, match="runtime must be one of"):
        Classifier.load(model_copy, runtime="int4")
