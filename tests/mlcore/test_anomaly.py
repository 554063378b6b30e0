"""mlcore.anomaly through its Python API: learning from good images only, scores, maps, calibration."""

import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.anomaly import AnomalyConfig, GoodSetTooSmall, min_good_images
from mlcore.anomaly.calibration import calibrate_threshold, min_calibration_images, split_good_images
from mlcore.anomaly.coreset import StreamingCoreset, greedy_coreset
from tests.data import ANOMALY_DEFECT_BOX, ANOMALY_SURFACE_SHAPE, good_strip, strip_with_defect

FALSE_ALARM_RATE = 0.1  # 9 held-out images calibrate it, so the test set stays small
GOOD_IMAGES = 24


def small_config(cache_dir, **overrides):
    return AnomalyConfig(**{"input_size": 96, "false_alarm_rate": FALSE_ALARM_RATE, "batch_size": 8,
                            "cache_dir": str(cache_dir), **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory, lite0_weights_cache_dir):
    from mlcore.anomaly import AnomalyModel, train_anomaly_model

    rng = np.random.default_rng(0)
    good = [good_strip(rng) for _ in range(GOOD_IMAGES)]
    events = []
    result = train_anomaly_model(small_config(lite0_weights_cache_dir), good + [good[0].copy()],
                                 out_dir=tmp_path_factory.mktemp("anomaly") / "model",
                                 progress=lambda fraction, info: events.append((fraction, info["phase"])))
    return result, AnomalyModel.load(result.model_dir), events


def test_a_planted_defect_scores_above_new_good_images_and_the_threshold(trained):
    _, model, _ = trained
    rng = np.random.default_rng(1)
    good = model.score([good_strip(rng) for _ in range(6)])
    defects = model.score([strip_with_defect(rng, value=value) for value in (0, 255, 0)])
    assert min(r.anomaly_score for r in defects) > max(r.anomaly_score for r in good)
    assert all(r.anomalous and r.anomaly_score > 1 for r in defects)
    assert sum(r.anomalous for r in good) <= 1


def test_the_map_is_at_the_image_size_and_brightest_on_the_defect(trained):
    _, model, _ = trained
    (result,) = model.score([strip_with_defect(np.random.default_rng(2))], maps=True)
    assert result.map.shape == ANOMALY_SURFACE_SHAPE and result.map.dtype == np.uint8
    y0, x0, y1, x1 = ANOMALY_DEFECT_BOX
    peak_y, peak_x = np.unravel_index(np.argmax(result.map_values), result.map_values.shape)
    assert y0 - 4 <= peak_y < y1 + 4 and x0 - 4 <= peak_x < x1 + 4
    inside = result.map[y0:y1, x0:x1].mean()
    outside = np.delete(result.map, np.s_[y0 - 16:y1 + 16], axis=0).mean()
    assert inside > 128 > outside + 40


def test_maps_are_left_out_unless_asked_for(trained):
    _, model, _ = trained
    (result,) = model.score([good_strip(np.random.default_rng(3))])
    assert result.map is None and result.map_values is None
    assert set(result.to_dict()) == {"anomaly_score", "anomalous"}


def test_config_json_holds_everything_needed_to_score(trained):
    result, _, _ = trained
    config = json.loads((Path(result.model_dir) / "config.json").read_text())
    assert config["kind"] == "anomaly" and config["false_alarm_rate"] == FALSE_ALARM_RATE
    assert config["threshold"] == max(result.calibration_scores)  # 9 held out at 10 %: the 9th smallest
    backbone = config["backbone"]
    assert backbone["name"] == "efficientnet_lite0" and backbone["layers"] == ["block3b_add", "block4c_add"]
    assert backbone["input_shape"] == [80, 128]  # ~96 x 96 pixels in the images' 5:3 aspect
    assert backbone["weight_source"]["kind"] == "imagenet" and len(backbone["weight_source"]["sha256"]) == 64
    counts = config["training"]["good_images"]
    assert counts == {"given": GOOD_IMAGES + 1, "distinct": GOOD_IMAGES, "duplicates": 1, "unreadable": 0,
                      "train": GOOD_IMAGES - 9, "calibration": 9}
    assert config["memory"]["size"] == 1000 and config["memory"]["nn_library"] == "faiss-cpu"
    assert config["calibration"]["rank"] == 9 and config["training"]["seconds"]["total"] > 0
    assert config["versions"]["faiss-cpu"] and config["versions"]["tensorflow-cpu"]


def test_progress_runs_through_the_phases_to_one(trained):
    _, _, events = trained
    fractions = [fraction for fraction, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert events[0][1] == "scan" and events[-1][1] == "save"
    assert {"features", "coreset", "calibrate"} <= {phase for _, phase in events}


def test_a_loaded_model_scores_images_as_training_scored_them(trained, lite0_weights_cache_dir):
    from mlcore.anomaly.model import image_score

    result, model, _ = trained
    images = [good_strip(np.random.default_rng(4)) for _ in range(2)]
    grids = model.scorer.distances(images)
    raw = [image_score(grid, rule="map_max", input_shape=model.input_shape, sigma=4.0) for grid in grids]
    assert [r.anomaly_score for r in model.score(images)] == pytest.approx([value / model.threshold for value in raw])
    assert model.threshold == pytest.approx(max(result.calibration_scores))


def test_another_false_alarm_rate_rethresholds_the_same_held_out_scores(trained):
    result, model, _ = trained
    assert list(model.calibration_scores) == pytest.approx(sorted(result.calibration_scores))
    assert model.threshold_for(FALSE_ALARM_RATE).threshold == model.threshold
    looser = model.threshold_for(0.3)  # 9 held out: rank ceil(10 * 0.7) = 7
    assert looser.threshold == pytest.approx(sorted(result.calibration_scores)[6]) and looser.threshold < model.threshold


def test_too_few_good_images_say_how_many_are_needed(lite0_weights_cache_dir, tmp_path):
    from mlcore.anomaly import train_anomaly_model

    rng = np.random.default_rng(0)
    with pytest.raises(GoodSetTooSmall, match=r"needs at least 19 \(9 held out"):
        train_anomaly_model(small_config(lite0_weights_cache_dir), [good_strip(rng) for _ in range(18)],
                            out_dir=tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_calibration_needs_enough_held_out_images_for_the_rate():
    assert min_calibration_images(0.01) == 99 and min_calibration_images(0.05) == 19
    assert min_good_images(0.01) == 109
    with pytest.raises(GoodSetTooSmall):
        calibrate_threshold(list(range(18)), false_alarm_rate=0.05)


def test_the_threshold_is_the_conformal_quantile():
    scores = list(range(1, 101))  # 100 held-out scores: rank ceil(101 * 0.99) = 100
    calibration = calibrate_threshold(scores, false_alarm_rate=0.01)
    assert calibration.threshold == 100 and calibration.rank == 100 and calibration.held_out_false_alarms == 0
    calibration = calibrate_threshold(scores, false_alarm_rate=0.05)
    assert calibration.threshold == 96 and calibration.held_out_false_alarms == 4


def test_the_split_depends_on_content_not_on_order():
    keys = [f"{i:064x}" for i in range(200)]
    first = split_good_images(keys, false_alarm_rate=0.05)
    reversed_split = split_good_images(keys[::-1], false_alarm_rate=0.05)
    assert {keys[i] for i in first.calibration} == {keys[::-1][i] for i in reversed_split.calibration}
    assert len(first.calibration) == 40 and len(first.train) == 160  # 20 % held out


def test_greedy_coreset_keeps_the_rare_patch():
    rng = np.random.default_rng(0)
    common = rng.normal(0, 0.01, (500, 8)).astype(np.float32)
    rare = np.full((1, 8), 5.0, np.float32)
    chosen = greedy_coreset(np.concatenate([common, rare]), 3, seed=1)
    assert 500 in chosen.tolist()


def test_streaming_coreset_is_bounded_and_covers_every_cluster():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (20, 16)).astype(np.float32)
    coreset = StreamingCoreset(dim=16, ratio=0.01, max_size=60, block_size=2048, pool_limit=240)
    for _ in range(40):
        labels = rng.integers(0, 20, 2000)
        coreset.add(centres[labels] + rng.normal(0, 0.1, (2000, 16)).astype(np.float32))
    memory = coreset.result()
    assert len(memory) == 60  # 1 % of 80,000 is 800, capped at 60
    nearest_centre = np.linalg.norm(memory[:, None, :] - centres[None], axis=2).argmin(axis=1)
    assert set(nearest_centre.tolist()) == set(range(20))


def test_streaming_coreset_that_knows_the_count_keeps_a_small_pool():
    rng = np.random.default_rng(0)
    coreset = StreamingCoreset(dim=8, ratio=0.01, max_size=50, block_size=1000, expected=40_000)
    for _ in range(40):
        coreset.add(rng.normal(size=(1000, 8)).astype(np.float32))
        assert len(coreset._pool) <= 2 * 50 + 40  # each block its share of twice the final size (+1 rounding up)
    assert len(coreset.result()) == 50


def test_the_indexes_give_the_nearest_distance():
    from mlcore.anomaly.index import PatchIndex

    rng = np.random.default_rng(0)
    memory = rng.normal(size=(300, 12)).astype(np.float32)
    queries = rng.normal(size=(50, 12)).astype(np.float32)
    expected = np.linalg.norm(queries[:, None] - memory[None], axis=2).min(axis=1)
    np.testing.assert_allclose(PatchIndex(memory, method="exact").distances(queries), expected, rtol=1e-4, atol=1e-4)
    approximate = PatchIndex(memory).distances(queries)  # the default, HNSW: never nearer than the truth
    assert np.all(approximate >= expected - 1e-4) and np.mean(np.isclose(approximate, expected, rtol=1e-4)) >= 0.95
