"""Which backbones can train on this machine: a backbone is offered only when its ImageNet weights
are here. Where each file is lives in mlcore.weights.files, which asks without importing Keras (the
training page renders in web processes that never load TensorFlow); this turns it into what the
pages say."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from mlcore.artefact import AUTO_BACKBONE, BACKBONES, EFFICIENTNET_LITE0, RESNET50
from mlcore.weights import files as weights_files


@dataclass(frozen=True)
class BackboneAvailability:
    name: str
    available: bool
    why_not: str = ""  # what is missing and how to add it


def _resnet50() -> BackboneAvailability:
    explicit = settings.STEELQC_RESNET50_WEIGHTS or None
    if weights_files.resnet50_weights_available(explicit=explicit):
        return BackboneAvailability(RESNET50, True)
    return BackboneAvailability(RESNET50, False, (
        f"its ImageNet weights file is not at {weights_files.resnet50_weights_path(explicit)}. With network access "
        "run python manage.py fetch_pretrained_weights resnet50; without, copy "
        f"{weights_files.RESNET50_WEIGHTS_FILE_NAME} there or set STEELQC_RESNET50_WEIGHTS to its path"))


def _efficientnet_lite0() -> BackboneAvailability:
    try:
        weights_files.lite0_packaged_weights_path()
    except weights_files.PretrainedWeightsUnavailable as error:
        return BackboneAvailability(EFFICIENTNET_LITE0, False, str(error))
    return BackboneAvailability(EFFICIENTNET_LITE0, True)


_CHECKS = {RESNET50: _resnet50, EFFICIENTNET_LITE0: _efficientnet_lite0}


def backbone_availability() -> list[BackboneAvailability]:
    """One entry per backbone in ``mlcore.artefact.BACKBONES``, in that order."""
    return [_CHECKS[name]() for name in BACKBONES]


def backbone_choices(availability: list[BackboneAvailability]) -> list[str]:
    """What a person may pick: ``auto`` and every backbone whose weights are here."""
    return [AUTO_BACKBONE, *(entry.name for entry in availability if entry.available)]
