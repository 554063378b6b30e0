"""The ONNX copy's check and what is recorded when it fails (no conversion here: the one real
conversion of a shared tiny model is in tests/inspections/registry/test_onnx_copy.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlcore.artefact import ONNX_CHECK_FILE, ONNX_FILE
from mlcore.onnx_copy import (
    MIN_TOP1_AGREEMENT,
    SYNTHETIC_CHECK_IMAGES,
    onnx_copy_export,
    parity_check,
    synthetic_check_images,
)
from mlcore.serving import PARITY_TOLERANCE


def _outputs(probabilities, features=None):
    probabilities = np.asarray(probabilities, np.float32)
    return probabilities, np.ones((len(probabilities), 4), np.float32) if features is None else features


def test_the_thresholds_are_keras_parity_and_every_top_class_the_same():
    assert (PARITY_TOLERANCE, MIN_TOP1_AGREEMENT) == (1e-3, 1.0)


def test_a_copy_within_tolerance_passes():
    keras = _outputs([[0.7, 0.3], [0.2, 0.8]])
    check = parity_check(keras, _outputs([[0.7004, 0.2996], [0.2, 0.8]]))
    assert check["reasons"] == []
    assert check["max_probability_difference"] == pytest.approx(4e-4, abs=1e-6)
    assert check["top1_agreement"] == 1.0


def test_probabilities_further_than_the_tolerance_fail_with_the_figure():
    check = parity_check(_outputs([[0.7, 0.3]]), _outputs([[0.69, 0.31]]))
    assert check["max_probability_difference"] == pytest.approx(0.01, abs=1e-6)
    assert any("probabilities differ" in reason and "0.01" in reason for reason in check["reasons"])


def test_a_different_top_class_fails_even_within_the_tolerance():
    check = parity_check(_outputs([[0.5002, 0.4998]]), _outputs([[0.4998, 0.5002]]))
    assert check["max_probability_difference"] <= PARITY_TOLERANCE
    assert check["top1_agreement"] == 0.0
    assert any("top class agrees" in reason for reason in check["reasons"])


def test_features_and_a_missing_detection_map_are_checked_too():
    features = np.full((1, 4), 2.0, np.float32)
    moved = parity_check((np.array([[1.0, 0.0]]), features), (np.array([[1.0, 0.0]]), features * 1.01))
    assert any("features differ" in reason for reason in moved["reasons"])
    no_map = parity_check((np.array([[1.0, 0.0]]), features, np.zeros((1, 2, 2, 3))),
                          (np.array([[1.0, 0.0]]), features))
    assert no_map["reasons"] == ["the copy does not give the detection map Keras gives"]


def test_a_failed_conversion_is_recorded_with_its_reason_and_writes_no_copy(tiny_trained, tmp_path, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("Unsupported ops: ScaleAndTranslate")

    monkeypatch.setattr("mlcore.export.export_model", fail)
    record = onnx_copy_export(model_dir=tiny_trained[0].model_dir, out_dir=tmp_path)
    assert record["included"] is False
    assert record["reason"] == "conversion failed: RuntimeError: Unsupported ops: ScaleAndTranslate"
    assert not (tmp_path / ONNX_FILE).exists()
    assert json.loads((tmp_path / ONNX_CHECK_FILE).read_text()) == record


def test_without_held_out_images_of_its_shape_synthetic_frames_are_checked_and_said_so(tiny_trained, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setattr("mlcore.export.export_model", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("stop")))
    other_shape = [np.zeros((48, 48), np.uint8)]
    record = onnx_copy_export(model_dir=tiny_trained[0].model_dir, out_dir=tmp_path, check_images=other_shape)
    assert record["check_images"] == SYNTHETIC_CHECK_IMAGES
    assert record["check_source"].startswith("synthetic frames")
    frames = synthetic_check_images(record["image_shape"])
    assert frames[0].shape == tuple(record["image_shape"]) and len({frame.tobytes() for frame in frames}) == len(frames)
