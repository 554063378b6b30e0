"""``python -m mlcore anomaly-train`` / ``anomaly-score`` as a user runs them: JSON lines, maps, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data import ANOMALY_DEFECT_BOX, ANOMALY_SURFACE_SHAPE, good_strip, strip_with_defect

ROOT = Path(__file__).resolve().parents[2]


def mlcore(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "mlcore", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_good(folder: Path, count: int, *, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(count):
        target = folder / ("line-a" if i % 2 else "line-b/deeper") / f"good_{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(good_strip(rng)).save(target)


@pytest.fixture(scope="module")
def cli_anomaly_model(tmp_path_factory, lite0_weights_cache_dir):
    root = tmp_path_factory.mktemp("anomaly-cli")
    write_good(root / "good", 14)
    write_good(root / "more", 10, seed=1)
    (root / "good" / "notes.txt").write_text("not an image")
    run = mlcore("anomaly-train", "--good", root / "good", root / "more", "--out", root / "model",
                 "--false-alarm-rate", 0.1, "--input-size", 96, env={"STEELQC_CACHE_DIR": str(lite0_weights_cache_dir)})
    return root, run


@pytest.fixture(scope="module")
def scored(cli_anomaly_model):
    root, _ = cli_anomaly_model
    rng = np.random.default_rng(5)
    files = {"good": root / "new_good.png", "defect": root / "scratched.jpg", "broken": root / "broken.png"}
    Image.fromarray(good_strip(rng)).save(files["good"])
    Image.fromarray(strip_with_defect(rng, value=255)).convert("RGB").save(files["defect"], quality=95)
    files["broken"].write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run = mlcore("anomaly-score", "--model", root / "model", "--maps", root / "maps", "--json",
                 files["good"], files["broken"], files["defect"])
    return files, run


def test_train_finds_images_recursively_and_reports_progress_on_stderr(cli_anomaly_model):
    root, run = cli_anomaly_model
    assert run.returncode == 0, run.stderr
    assert "24 image files" in run.stderr and "100.0% save" in run.stderr and "features" in run.stderr
    assert "anomaly model written to" in run.stdout and "Traceback" not in run.stderr
    config = json.loads((root / "model" / "config.json").read_text())
    assert config["kind"] == "anomaly" and config["training"]["good_images"]["distinct"] == 24
    assert config["false_alarm_rate"] == 0.1


def test_score_prints_one_json_line_per_file_in_order(scored):
    files, run = scored
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(files[k]) for k in ("good", "broken", "defect")]
    good, broken, defect = lines
    assert good["anomalous"] is False and defect["anomalous"] is True
    assert defect["anomaly_score"] > 1 > good["anomaly_score"]
    assert set(good) == {"path", "anomaly_score", "anomalous", "map"}


def test_an_unreadable_image_gets_an_error_line_and_a_non_zero_exit(scored):
    files, run = scored
    broken = json.loads(run.stdout.splitlines()[1])
    assert broken["error"] and broken["anomaly_score"] is None and broken["map"] is None
    assert run.returncode != 0
    assert f"error: cannot read image {files['broken']}" in run.stderr and "Traceback" not in run.stderr


def test_maps_are_8_bit_pngs_at_the_image_size_bright_on_the_defect(scored):
    _, run = scored
    good, _, defect = [json.loads(line) for line in run.stdout.splitlines()]
    with Image.open(defect["map"]) as picture:
        assert picture.mode == "L" and picture.size == ANOMALY_SURFACE_SHAPE[::-1]
        pixels = np.asarray(picture)
    y0, x0, y1, x1 = ANOMALY_DEFECT_BOX
    assert pixels[y0:y1, x0:x1].mean() > 128 > pixels[:y0 - 16].mean() + 40
    with Image.open(good["map"]) as picture:
        assert np.asarray(picture).max() < 128  # a good image: nothing past the threshold's grey


def test_without_maps_the_map_is_null(cli_anomaly_model, scored, capsys):
    from mlcore.cli import main  # in this process: TensorFlow is loaded once for the module, not again

    root, _ = cli_anomaly_model
    files, _ = scored
    assert main(["anomaly-score", "--model", str(root / "model"), "--json", str(files["good"])]) == 0
    assert json.loads(capsys.readouterr().out)["map"] is None


def test_too_few_good_images_fail_at_once_naming_the_minimum(tmp_path):
    write_good(tmp_path / "good", 12)
    run = mlcore("anomaly-train", "--good", tmp_path / "good", "--out", tmp_path / "model", timeout=60)
    assert run.returncode != 0 and run.stdout == ""
    assert "12 good images found" in run.stderr and "needs at least 109 distinct good images" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "model").exists()


@pytest.mark.parametrize("folder", ["missing", "empty", "classifier"])
def test_a_folder_that_is_not_an_anomaly_model_is_refused_by_name(tmp_path, folder):
    image = tmp_path / "x.png"
    Image.fromarray(good_strip(np.random.default_rng(0))).save(image)
    model = tmp_path / folder
    if folder != "missing":
        model.mkdir()
    if folder == "classifier":
        (model / "model.keras").write_bytes(b"")
        (model / "config.json").write_text(json.dumps({"backbone": {"name": "efficientnet_lite0"}}))
    run = mlcore("anomaly-score", "--model", model, "--json", image, timeout=60)
    assert run.returncode != 0 and run.stdout == "" and "Traceback" not in run.stderr
    expected = {"missing": "model folder not found", "empty": "is not an anomaly model folder (no config.json)",
                "classifier": "is a classifier model folder, not an anomaly model"}[folder]
    assert expected in run.stderr
