"""``python -m mlcore`` as a user runs it: exit codes, one-line errors, JSON shapes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def mlcore(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "mlcore", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def cli_model(tiny_dataset, tiny_tools, tmp_path_factory):
    """A model trained by the CLI (weights from STEELQC_CACHE_DIR, converted once per session)."""
    out = tmp_path_factory.mktemp("cli") / "model"
    run = mlcore("train", "--data", tiny_dataset, "--out", out, "--backbone", "efficientnet_lite0",
                 "--input-size", tiny_tools.input_size, "--epochs", 20, "--views", 1, "--no-finetune",
                 "--serving", "fp32", "--json", "--quiet", env={"STEELQC_CACHE_DIR": str(tiny_tools.cache_dir)})
    return out, run


def test_train_exits_zero_and_prints_one_json_summary(cli_model, tiny_tools):
    out, run = cli_model
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["classes"] == list(tiny_tools.classes)
    assert 0.0 <= summary["accuracy"] <= 1.0 and summary["finetuned"] is False
    config = json.loads((out / "config.json").read_text())
    assert config["backbone"]["weight_source"]["kind"] == "imagenet"
    assert config["serving"]["runtime"] == "tflite" and "int8" not in config["serving"]  # --serving fp32
    images = config["training"]["images"]
    assert sum(images.values()) == 30 and images["train"] == 21 and min(images.values()) >= 3


def test_evaluate_json_prints_one_object_with_the_contract_keys(cli_model, tiny_dataset, tiny_tools):
    out, _ = cli_model
    run = mlcore("evaluate", "--model", out, "--data", tiny_dataset, "--json")
    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.strip().splitlines()
    metrics = json.loads(line)
    assert metrics["classes"] == list(tiny_tools.classes)
    assert set(metrics["per_class"]["spots"]) >= {"precision", "recall", "f1", "support"}
    assert sum(row["support"] for row in metrics["per_class"].values()) == 30
    assert np.array(metrics["confusion_matrix"]).sum() == 30
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and metrics["accuracy"] > 0.8
    review = metrics["review"]
    assert review["ood_method"] == "multi_depth_texture_knn" and review["ood_threshold"] > 0
    assert set(review["reasons"]) == {"foreign", "low_confidence", "blank_frame", "suspect_label", "anomaly"}
    assert review["needs_review_rate"] == metrics["needs_review_rate"] >= max(review["reasons"].values())


def test_predict_json_prints_one_line_per_file(cli_model, tiny_dataset, tmp_path, tiny_tools):
    out, _ = cli_model
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(blank)
    files = sorted((tiny_dataset / "spots").iterdir())[:2] + [blank]
    run = mlcore("predict", "--model", out, "--json", *files)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    for line in lines:
        assert set(line) >= {"file", "label", "confidence", "probabilities", "needs_review", "ood_score",
                             "review_reasons"}
        assert set(line["probabilities"]) == set(tiny_tools.classes)
        assert line["needs_review"] is bool(line["review_reasons"])
    assert lines[-1]["needs_review"] is True and lines[-1]["review_reasons"][0] == "blank_frame"


def test_missing_data_folder_fails_with_one_line(tmp_path):
    run = mlcore("train", "--data", tmp_path / "nowhere", "--out", tmp_path / "model")
    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0 and "nowhere" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "model").exists()


def test_class_mismatch_between_model_and_data_fails_with_one_line(cli_model, tmp_path):
    out, _ = cli_model
    (tmp_path / "weld_seam").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "weld_seam" / "a.png")
    run = mlcore("evaluate", "--model", out, "--data", tmp_path, "--json")
    assert run.returncode != 0 and run.stdout == ""
    assert "weld_seam" in run.stderr and "Traceback" not in run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [run.stderr.strip().splitlines()[-1]]


def test_unreadable_image_is_reported_and_fails_the_run(cli_model, tmp_path):
    out, _ = cli_model
    broken = tmp_path / "broken.bmp"
    broken.write_bytes(b"BM not really")
    run = mlcore("predict", "--model", out, "--json", broken)
    assert run.returncode != 0
    assert "broken.bmp" in run.stderr and "Traceback" not in run.stderr


def test_export_writes_a_loadable_saved_model(cli_model, tmp_path, tiny_tools):
    import tensorflow as tf

    out, _ = cli_model
    run = mlcore("export", "--model", out, "--out", tmp_path / "edge")
    assert run.returncode == 0, run.stderr
    serve = tf.saved_model.load(str(tmp_path / "edge" / "saved_model")).signatures["serving_default"]
    # Any size and channel count, as the in-model adapter promises.
    for shape in ([2, 40, 56, 1], [1, 32, 32, 3]):
        outputs = serve(image=tf.random.uniform(shape, 0, 255, seed=1))
        assert outputs["probabilities"].shape == (shape[0], len(tiny_tools.classes))
        np.testing.assert_allclose(outputs["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert json.loads((tmp_path / "edge" / "classes.json").read_text()) == list(tiny_tools.classes)


def test_cli_import_stays_light():
    """Argument errors must not pay for (or print) the TensorFlow start-up."""
    code = "import sys, mlcore.cli; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_help_lists_the_commands():
    run = mlcore("--help")
    assert run.returncode == 0
    for command in ("train", "evaluate", "predict", "export"):
        assert command in run.stdout
