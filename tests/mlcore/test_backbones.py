"""Backbones: converted EfficientNet-Lite0 weights recognise ImageNet photos; builds, names, files."""

import hashlib

import h5py
import keras
import numpy as np
import pytest
from PIL import Image
from skimage import data as sample_images

from mlcore.backbones import (
    BACKBONES,
    CaffeImageNetNormalization,
    EfficientNetLiteNormalization,
    PretrainedWeightsUnavailable,
    build_backbone,
    resolve_backbone_name,
)
from mlcore.backbones import efficientnet_lite, resnet50
from mlcore.weights.pth import read_state_dict

CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
ESPRESSO = 967


def imagenet_logits(classifier, photo: np.ndarray) -> np.ndarray:
    resized = Image.fromarray(photo).convert("RGB").resize((224, 224), Image.BILINEAR)
    batch = np.asarray(resized, dtype=np.float32)[None]
    normalised = EfficientNetLiteNormalization()(batch)
    return np.asarray(classifier(normalised, training=False))[0]


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return tmp_path / "keras-home"


# --- EfficientNet-Lite0 with the packaged ImageNet weights ---


def test_lite0_puts_a_cat_class_in_the_top3_for_the_cat_photo(lite0_imagenet_classifier):
    classifier, _ = lite0_imagenet_classifier
    top3 = np.argsort(-imagenet_logits(classifier, sample_images.chelsea()))[:3]
    assert CAT_CLASSES & set(top3.tolist()), top3


def test_lite0_ranks_espresso_first_for_the_coffee_photo(lite0_imagenet_classifier):
    classifier, _ = lite0_imagenet_classifier
    assert int(np.argmax(imagenet_logits(classifier, sample_images.coffee()))) == ESPRESSO


def test_lite0_weight_source_names_the_packaged_file_and_its_sha256(lite0_imagenet_classifier):
    _, source = lite0_imagenet_classifier
    path = efficientnet_lite.packaged_weights_path()
    assert source.kind == "imagenet"
    assert source.file == path.name
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert source.to_dict() == {"kind": "imagenet", "file": path.name, "sha256": source.sha256}


def test_lite0_backbone_reuses_the_cached_conversion(lite0_imagenet_classifier, lite0_weights_cache_dir):
    cached = list(lite0_weights_cache_dir.glob("*.weights.h5"))
    assert len(cached) == 1
    written_at = cached[0].stat().st_mtime_ns

    backbone = build_backbone("efficientnet_lite0", cache_dir=lite0_weights_cache_dir)

    assert cached[0].stat().st_mtime_ns == written_at
    assert backbone.weight_source == lite0_imagenet_classifier[1]
    state = read_state_dict(efficientnet_lite.packaged_weights_path())
    np.testing.assert_array_equal(
        backbone.model.get_layer("stem_conv").kernel, state["_conv_stem.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        backbone.model.get_layer("block2a_dwconv").kernel,
        state["_blocks.1._depthwise_conv.weight"].transpose(2, 3, 0, 1),
    )


# --- building without weights ---


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_without_weights_yields_feature_maps_at_several_depths_and_its_blocks(name):
    backbone = build_backbone(name, weights=None, input_size=64)

    assert backbone.name == name and backbone.input_size == 64
    assert backbone.weight_source.kind == "none" and backbone.weight_source.sha256 is None
    outputs = backbone.model(np.zeros((1, 64, 64, 3), np.float32))
    assert len(outputs) == len(backbone.texture_layers) >= 3
    sizes = [int(output.shape[1]) for output in outputs]
    assert all(len(output.shape) == 4 for output in outputs)
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]  # shallow to deep
    assert backbone.model.get_layer(backbone.last_conv_layer).output is backbone.model.outputs[-1]
    layer_names = [layer.name for layer in backbone.model.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert [n for block in backbone.blocks for n in block] == layer_names
    assert backbone.last_conv_layer in backbone.blocks[-1]
    # Stage 7 / stage 5 and the ImageNet head are not built: the descriptor stops at the texture layers.
    assert len(backbone.blocks) == {"resnet50": 14, "efficientnet_lite0": 16}[name]


def test_unknown_backbone_name_is_refused():
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        resolve_backbone_name("vgg16")


# --- ResNet50 weights are a local file or a loud error ---


def test_auto_picks_lite0_when_no_resnet50_weights_file(empty_keras_home):
    assert resolve_backbone_name("auto") == "efficientnet_lite0"
    assert resolve_backbone_name("auto", resnet50_weights=empty_keras_home / "absent.h5") == "efficientnet_lite0"


def test_auto_picks_resnet50_when_its_weights_file_is_present(empty_keras_home, tmp_path):
    explicit = tmp_path / "copied.h5"
    explicit.write_bytes(b"stand-in")
    assert resolve_backbone_name("auto", resnet50_weights=explicit) == "resnet50"

    default = empty_keras_home / "models" / resnet50.WEIGHTS_FILE_NAME
    default.parent.mkdir(parents=True)
    default.write_bytes(b"stand-in")
    assert resolve_backbone_name("auto") == "resnet50"


def test_resnet50_imagenet_without_file_says_where_to_put_it(empty_keras_home):
    expected = empty_keras_home / "models" / resnet50.WEIGHTS_FILE_NAME
    with pytest.raises(PretrainedWeightsUnavailable) as missing:
        build_backbone("resnet50", weights="imagenet", input_size=64)
    assert str(expected) in str(missing.value)


def test_resnet50_explicit_weights_path_missing_names_that_path(empty_keras_home, tmp_path):
    explicit = tmp_path / "elsewhere" / resnet50.WEIGHTS_FILE_NAME
    with pytest.raises(PretrainedWeightsUnavailable, match=str(explicit)):
        build_backbone("resnet50", resnet50_weights=explicit, input_size=64)


def test_resnet50_loads_weights_from_the_given_file(tmp_path):
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    # A stand-in for the real ImageNet file, written in the same legacy HDF5 layout.
    donor = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    path = tmp_path / resnet50.WEIGHTS_FILE_NAME
    with h5py.File(path, "w") as file:
        save_weights_to_hdf5_group(file, donor)

    backbone = build_backbone("resnet50", resnet50_weights=path, input_size=64)

    np.testing.assert_array_equal(
        backbone.model.get_layer("conv4_block6_3_conv").kernel, donor.get_layer("conv4_block6_3_conv").kernel
    )
    assert backbone.weight_source.to_dict() == {
        "kind": "imagenet", "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


# --- normalisation ---


def test_normalisation_layers_map_rgb_to_each_backbone_range():
    rgb = np.array([[[[255.0, 127.0, 0.0]]]], np.float32)
    np.testing.assert_allclose(CaffeImageNetNormalization()(rgb)[0, 0, 0], [0 - 103.939, 127 - 116.779, 255 - 123.68],
                               rtol=1e-6)
    np.testing.assert_allclose(EfficientNetLiteNormalization()(rgb)[0, 0, 0], [1.0, 0.0, -127 / 128], rtol=1e-6)


def test_model_with_normalisation_and_backbone_round_trips_keras_file(tmp_path):
    lite0 = build_backbone("efficientnet_lite0", weights=None, input_size=64)
    inputs = keras.Input((64, 64, 3))
    lite_features = keras.layers.GlobalAveragePooling2D()(lite0.model(lite0.normalization(inputs))[-1])
    caffe_features = keras.layers.Flatten()(keras.layers.Conv2D(2, 8, strides=8)(CaffeImageNetNormalization()(inputs)))
    outputs = keras.layers.Dense(3)(keras.layers.Concatenate()([lite_features, caffe_features]))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)

    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras")

    np.testing.assert_allclose(restored(images), model(images), rtol=1e-5, atol=1e-5)
    restored_types = {type(layer) for layer in restored.layers}
    assert {CaffeImageNetNormalization, EfficientNetLiteNormalization} <= restored_types


def test_damaged_cache_entry_is_rebuilt_from_the_packaged_file(lite0_imagenet_classifier, lite0_weights_cache_dir,
                                                               tmp_path):
    (cached,) = lite0_weights_cache_dir.glob("*.weights.h5")
    damaged = tmp_path / "cache" / cached.name
    damaged.parent.mkdir()
    damaged.write_bytes(b"half a file")

    rebuilt, _ = efficientnet_lite.build_imagenet_classifier(cache_dir=damaged.parent, input_size=64)

    assert damaged.stat().st_size > 1_000_000
    classifier, _ = lite0_imagenet_classifier
    np.testing.assert_array_equal(rebuilt.get_layer("logits").kernel, classifier.get_layer("logits").kernel)
