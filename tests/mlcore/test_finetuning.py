"""Phase 2 really fine-tunes: the top backbone blocks learn, everything below them and every
BatchNorm statistic stays as the ImageNet weights had it. Read from the saved artefact, so
the check holds whatever the training code looks like inside."""

import numpy as np
import pytest

from mlcore.training import train

FINETUNE_BLOCKS = 2


@pytest.fixture(scope="module")
def finetuned_and_start(tiny_dataset, tiny_tools, tmp_path_factory):
    """(backbone of the saved fine-tuned model, the same backbone freshly built from ImageNet, its blocks)."""

    from mlcore.backbones import build_backbone
    from mlcore.model import backbone_submodel, load_keras_model

    # A head that barely learns in phase 1 leaves phase 2 a validation loss to beat, so the
    # fine-tuned weights are the ones kept and saved.
    config = tiny_tools.config(head_epochs=1, head_patience=1, head_learning_rate=1e-6, finetune="on",
                               finetune_epochs=1, finetune_blocks=FINETUNE_BLOCKS, finetune_learning_rate=1e-4,
                               serving_export=False)
    result = train(config, tiny_tools.samples(tiny_dataset), out_dir=tmp_path_factory.mktemp("finetuned") / "model")
    trained = backbone_submodel(load_keras_model(result.model_dir))
    start = build_backbone("efficientnet_lite0", weights="imagenet", cache_dir=tiny_tools.cache_dir,
                           input_size=tiny_tools.input_size)
    return trained, start


def _weights(model, name):
    return model.get_layer(name).get_weights()


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_phase_two_changes_the_weights_of_the_unfrozen_top_blocks(finetuned_and_start):
    import keras

    trained, start = finetuned_and_start
    top = [name for block in start.blocks[-FINETUNE_BLOCKS:] for name in block]
    learnable = [name for name in top if start.model.get_layer(name).get_weights()
                 and not isinstance(start.model.get_layer(name), keras.layers.BatchNormalization)]
    assert learnable, "the top blocks hold no trainable layer"
    unchanged = [name for name in learnable if _same(_weights(trained, name), _weights(start.model, name))]
    assert unchanged == [], f"phase 2 left these top-block layers at their ImageNet weights: {unchanged}"


def test_phase_two_leaves_every_batchnorm_statistic_alone(finetuned_and_start):
    import keras

    trained, start = finetuned_and_start
    norms = [layer.name for layer in start.model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 40
    moved = [name for name in norms if not _same(_weights(trained, name), _weights(start.model, name))]
    assert moved == [], f"BatchNorm gamma/beta/moving mean/variance changed in: {moved}"


def test_phase_two_leaves_the_lower_blocks_frozen(finetuned_and_start):
    trained, start = finetuned_and_start
    lower = [name for block in start.blocks[:-FINETUNE_BLOCKS] for name in block if _weights(start.model, name)]
    assert len(lower) > 60
    moved = [name for name in lower if not _same(_weights(trained, name), _weights(start.model, name))]
    assert moved == [], f"frozen layers changed: {moved}"
