import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.training import TrainConfig, TrainingCancelled, train


def test_progress_is_monotone_and_reaches_one(tiny_trained):
    _, events = tiny_trained
    fractions = [fraction for fraction, _ in events]
    assert fractions == sorted(fractions)
    assert fractions[0] < 0.2
    assert fractions[-1] == 1.0
    phases = [info["phase"] for _, info in events]
    assert {"features", "head", "finetune", "evaluate"} <= set(phases)
    # Writing the artefact and its serving copies is a phase of its own, the last (not 99 % of "evaluate").
    assert phases[-1] == "export" and phases.index("export") > max(i for i, p in enumerate(phases) if p == "evaluate")
    head_epochs = [info["epoch"] for _, info in events if info["phase"] == "head"]
    assert head_epochs[0] == 1 and "val_loss" in next(i for _, i in events if i["phase"] == "head")["metrics"]


def test_artefact_holds_model_classes_config_metrics_and_plots(tiny_trained, tiny_tools):
    result, _ = tiny_trained
    folder = Path(result.model_dir)
    for name in ("model.keras", "classes.json", "config.json", "metrics.json", "ood.npz",
                 "confusion_matrix.png", "training_curves.png"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "classes.json").read_text()) == list(tiny_tools.classes)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert metrics["split"] == "test" and sum(r["support"] for r in metrics["per_class"].values()) == 6
    config = json.loads((folder / "config.json").read_text())
    assert config["backbone"]["name"] == "efficientnet_lite0"
    assert config["backbone"]["weight_source"]["kind"] == "imagenet"
    assert config["backbone"]["input_size"] == tiny_tools.input_size
    assert config["ood"]["threshold"] > 0 and config["ood"]["validation_pass_rate"] == 0.95
    assert config["review"]["confidence_threshold"] == TrainConfig().confidence_threshold
    assert config["training"]["params"]["seed"] == 0 and config["mlcore_version"]
    assert (folder / "training_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_cancel_raises_and_leaves_no_model(tiny_dataset, tiny_tools, tmp_path):
    calls = []

    def should_cancel():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(TrainingCancelled):
        train(tiny_tools.config(), tiny_tools.samples(tiny_dataset), out_dir=tmp_path / "model",
              should_cancel=should_cancel)
    assert len(calls) == 3
    assert not (tmp_path / "model" / "model.keras").exists()


def test_same_seed_trains_the_same_model(tiny_dataset, tiny_tools, tmp_path):
    from mlcore.inference import Classifier

    samples = tiny_tools.samples(tiny_dataset)
    # Determinism is the Keras training's: the serving copy (a conversion of the same weights) is left out.
    config = tiny_tools.config(head_epochs=4, serving_export=False)
    probe = [tiny_tools.surface(label, np.random.default_rng(11)) for label in tiny_tools.classes]
    outputs = []
    for run in ("first", "second"):
        train(config, samples, out_dir=tmp_path / run)
        outputs.append(Classifier.load(tmp_path / run).predict_arrays(probe)[0])
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-6)


def test_tiny_surfaces_are_learned(tiny_trained):
    result, _ = tiny_trained
    assert result.metrics["accuracy"] >= 5 / 6
    assert result.history["head_best"]["val_accuracy"] >= 5 / 6


def test_samples_without_validation_split_are_refused(tiny_dataset, tiny_tools, tmp_path):
    samples = [s for s in tiny_tools.samples(tiny_dataset) if s.split != "val"]
    with pytest.raises(ValueError, match="validation"):
        train(tiny_tools.config(), samples, out_dir=tmp_path / "model")
