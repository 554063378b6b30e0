import pytest

from tests.data import PATTERNS, SPLIT_CYCLE, SURFACE_SIZE, surface, write_class_folders

# --- backbones: convert the packaged EfficientNet-Lite0 weights once per test session ---

@pytest.fixture(scope="session")
def lite0_weights_cache_dir(tmp_path_factory):
    """A converted-weights cache shared by the session; build_backbone(cache_dir=...) reuses it."""
    return tmp_path_factory.mktemp("steelqc-weights-cache")


@pytest.fixture(scope="session")
def lite0_imagenet_classifier(lite0_weights_cache_dir):
    """(1000-class Keras model, WeightSource) with the converted ImageNet weights."""
    from mlcore.backbones import efficientnet_lite

    return efficientnet_lite.build_imagenet_classifier(cache_dir=lite0_weights_cache_dir)


# --- engine: tiny synthetic folder-per-class data and one shared small trained model ---

TINY_CLASSES = PATTERNS  # each class is named for its pattern
# Randomly initialised EfficientNet-Lite0 features vanish (~1e-13) through its BatchNorm
# stack, which would make every learning and OOD check vacuous. The packaged ImageNet
# weights are offline and convert once per session (~2 s), so the engine tests use them
# at a small input size.
TINY_INPUT_SIZE = 64


def write_tiny_dataset(root, *, per_class: int = 10, seed: int = 0):
    write_class_folders(root, {label: label for label in TINY_CLASSES}, per_class=per_class, seed=seed)
    return root


def tiny_samples(root) -> list:
    """Every 5th file per class is val, the next test, the rest train."""
    from mlcore.io import Sample, scan_class_folders

    return [Sample(path=f.path, label=f.label, split=SPLIT_CYCLE[i % 5])
            for i, f in enumerate(scan_class_folders(root))]


def tiny_train_config(*, cache_dir, **overrides):
    from mlcore.training import TrainConfig

    params = dict(backbone="efficientnet_lite0", weights="imagenet", cache_dir=str(cache_dir),
                  input_size=TINY_INPUT_SIZE, augmented_views=1, head_epochs=30, head_patience=5,
                  finetune="off", batch_size=8, serving_int8=False)
    return TrainConfig(**{**params, **overrides})


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-surfaces"))


@pytest.fixture(scope="session")
def tiny_trained(tiny_dataset, tmp_path_factory, lite0_weights_cache_dir):
    """(TrainResult, progress events) of one small run, fine-tuning included."""
    from mlcore.training import train

    events = []
    result = train(
        tiny_train_config(cache_dir=lite0_weights_cache_dir, finetune="on", finetune_epochs=1),
        tiny_samples(tiny_dataset),
        out_dir=tmp_path_factory.mktemp("tiny-model") / "model",
        progress=lambda fraction, info: events.append((fraction, dict(info))))
    return result, events


@pytest.fixture(scope="session")
def tiny_classifier(tiny_trained):
    from mlcore.inference import Classifier

    return Classifier.load(tiny_trained[0].model_dir)


@pytest.fixture(scope="session")
def tiny_tools(lite0_weights_cache_dir):
    """The helpers above, for tests that need their own data or config."""
    from functools import partial
    from types import SimpleNamespace

    return SimpleNamespace(
        classes=TINY_CLASSES, size=SURFACE_SIZE, input_size=TINY_INPUT_SIZE, surface=surface,
        write_dataset=write_tiny_dataset, samples=tiny_samples, cache_dir=lite0_weights_cache_dir,
        config=partial(tiny_train_config, cache_dir=lite0_weights_cache_dir))
