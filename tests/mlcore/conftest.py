import pytest


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

TINY_CLASSES = ("horizontal_stripes", "spots", "vertical_stripes")
TINY_IMAGE_SIZE = 32
# Randomly initialised EfficientNet-Lite0 features vanish (~1e-13) through its BatchNorm
# stack, which would make every learning and OOD check vacuous. The packaged ImageNet
# weights are offline and convert once per session (~2 s), so the engine tests use them
# at a small input size.
TINY_INPUT_SIZE = 64


def tiny_surface(label: str, rng):
    """A 32x32 uint8 grayscale texture whose pattern depends on ``label``."""
    import numpy as np

    ys, xs = np.mgrid[0:TINY_IMAGE_SIZE, 0:TINY_IMAGE_SIZE]
    frequency = rng.uniform(0.6, 0.9)
    if label == "horizontal_stripes":
        base = 128 + 90 * np.sin(ys * frequency)
    elif label == "vertical_stripes":
        base = 128 + 90 * np.sin(xs * frequency)
    else:
        base = 60 + 150 * (rng.random(ys.shape) > 0.9)
    return np.clip(base + rng.normal(0, 8, ys.shape), 0, 255).astype(np.uint8)


def write_tiny_dataset(root, *, per_class: int = 10, seed: int = 0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label in TINY_CLASSES:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(tiny_surface(label, rng)).save(folder / f"{label}_{i}.png")
    return root


def tiny_samples(root) -> list:
    """Every 5th file per class is val, the next test, the rest train."""
    from mlcore.io import Sample, scan_class_folders

    splits = ("train", "train", "train", "val", "test")
    return [Sample(path=f.path, label=f.label, split=splits[i % 5])
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
        classes=TINY_CLASSES, size=TINY_IMAGE_SIZE, input_size=TINY_INPUT_SIZE, surface=tiny_surface,
        write_dataset=write_tiny_dataset, samples=tiny_samples, cache_dir=lite0_weights_cache_dir,
        config=partial(tiny_train_config, cache_dir=lite0_weights_cache_dir))
