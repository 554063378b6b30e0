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
