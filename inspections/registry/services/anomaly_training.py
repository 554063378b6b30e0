"""Anomaly training runs: learn what good steel looks like from the images labelled ``no_defect``,
register the model, and judge it with the anomaly gate (``mlcore.anomaly_gate``).

A run of kind ``anomaly`` goes through the same start, queue, progress, cancel and failure paths
as a classifier run (``services/training.py``); this module holds what differs: its parameters
(``AnomalyConfig``'s fields a person may set, checked by ``AnomalyConfig`` itself), which frozen
images it learns from (``no_defect`` of the train and validation splits; mlcore holds some of them
out to set the threshold), and the images it is judged on (``no_defect`` of the test split, never
learnt from, and every labelled defect, which no anomaly model learns from).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from inspections.catalog.models import NO_DEFECT_CLASS, Split
from inspections.catalog.services.stored_files import local_copies
from inspections.errors import ApplicationError
from inspections.locks import MODEL_REGISTRY_LOCK, lock_for_transaction
from inspections.registry.models import DatasetSnapshot, ModelVersion, ModelVersionKind, ModelVersionStatus
from inspections.registry.services.anomaly_models import version_score_files
from inspections.registry.services.model_versions import model_version_promote, model_version_register

logger = logging.getLogger(__name__)

# What a person may set for an anomaly run: AnomalyConfig's field -> (type, help). AnomalyConfig
# holds the defaults and the limits (its own checks refuse a bad value, in its words).
ANOMALY_PARAMETERS = {
    "false_alarm_rate": (float, "share of good images allowed above the threshold (1% needs at least 109 distinct "
                                "no_defect training images, 5% 29)"),
    "input_size": (int, "network input of about SIZE x SIZE pixels, in the good images' aspect ratio"),
    "coreset_ratio": (float, "share of the good images' patches kept in the memory"),
    "max_memory": (int, "most patches kept in the memory"),
    "batch_size": (int, "images per forward pass"),
    "seed": (int, "seed of the held-out split and the coreset"),
}
# The gate scores at most this many held-out good images and this many defects (a stable choice by
# content hash), so a large labelled set does not make the gate take longer than the training.
GATE_MAX_IMAGES = 1000
TRAINING_SPLITS = (Split.TRAIN, Split.VAL)


def anomaly_parameters_defaults() -> dict:
    from mlcore.anomaly import AnomalyConfig

    defaults = AnomalyConfig()
    return {name: getattr(defaults, name) for name in ANOMALY_PARAMETERS}


def anomaly_parameters_clean(params: dict | None) -> dict:
    """The run's parameters over AnomalyConfig's defaults, checked by AnomalyConfig; refused with
    ``invalid_parameter`` naming the first bad one."""
    from mlcore.anomaly import AnomalyConfig

    values = anomaly_parameters_defaults()
    for name, value in (params or {}).items():
        if name not in ANOMALY_PARAMETERS:
            raise ApplicationError(f"{name} is not a parameter of an anomaly run; it takes "
                                   f"{', '.join(ANOMALY_PARAMETERS)}.", code="invalid_parameter",
                                   details={"parameter": name})
        kind = ANOMALY_PARAMETERS[name][0]
        try:
            if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
                raise ValueError
            values[name] = kind(value)
        except (TypeError, ValueError):
            raise ApplicationError(f"{name} must be {'a whole number' if kind is int else 'a number'}.",
                                   code="invalid_parameter", details={"parameter": name}) from None
    try:
        AnomalyConfig(**values)
    except ValueError as error:
        raise ApplicationError(str(error), code="invalid_parameter", details={"parameters": values}) from None
    return values


def anomaly_snapshot_check(snapshot: DatasetSnapshot, *, parameters: dict) -> None:
    """Refuse (``not_enough_data``) a snapshot with too few no_defect images to learn from and to
    set the threshold at the run's false-alarm rate."""
    from mlcore.anomaly import min_good_images

    counts = snapshot.counts.get(NO_DEFECT_CLASS) or {}
    good = sum(counts.get(split, 0) for split in TRAINING_SPLITS)
    rate = parameters["false_alarm_rate"]
    needed = min_good_images(rate)
    if good < needed:
        raise ApplicationError(
            f"An anomaly model learns from images labelled {NO_DEFECT_CLASS}: {good} in the training and validation "
            f"splits, and a false-alarm rate of {rate:g} needs at least {needed} (some are held out to set the "
            f"threshold). Label more good images, or allow a higher false-alarm rate (false_alarm_rate).",
            code="not_enough_data", details={"counts": snapshot.counts, "good_images": good, "needed": needed})


def anomaly_run_train(*, run, reporter) -> ModelVersion:
    """Train the run's anomaly model from its snapshot's no_defect training images and register it."""
    from mlcore.anomaly import AnomalyConfig, train_anomaly_model

    good = list(run.snapshot.items.filter(label__name=NO_DEFECT_CLASS, split__in=TRAINING_SPLITS)
                .select_related("image").order_by("id"))
    reporter.log(f"learning what good looks like from {len(good)} {NO_DEFECT_CLASS} images of snapshot "
                 f"{run.snapshot_id}, parameters {run.parameters}")
    config = AnomalyConfig(**run.parameters, cache_dir=settings.STEELQC_CACHE_DIR)
    with tempfile.TemporaryDirectory(prefix=f"steelqc-run-{run.pk}-") as workdir:
        paths = local_copies(names=[item.image.file.name for item in good], folder=Path(workdir) / "images")
        out_dir = Path(workdir) / "model"
        result = train_anomaly_model(config, [paths[item.image.file.name] for item in good], out_dir=out_dir,
                                     progress=reporter.progress, should_cancel=reporter.should_cancel)
        used = result.config["training"]["good_images"]
        reporter.log(f"trained: threshold {result.config['threshold']:.4g} at a false-alarm rate of "
                     f"{config.false_alarm_rate:g}, {result.config['memory']['size']} patches in memory from "
                     f"{used['train']} images, {used['calibration']} held out to set the threshold")
        return model_version_register(model_dir=out_dir, created_by=run.requested_by, notes=f"training run {run.pk}")


def _stable_sample(items: list, limit: int) -> list:
    return sorted(items, key=lambda item: hashlib.sha256(item.image.sha256.encode()).hexdigest())[:limit]


def anomaly_gate_images(snapshot: DatasetSnapshot) -> tuple[list, list]:
    """(held-out good items, labelled defect items) the anomaly gate scores: no_defect images of the
    test split, and images of every other class, at most ``GATE_MAX_IMAGES`` of each."""
    items = list(snapshot.items.select_related("image", "label").order_by("id"))
    good = [item for item in items if item.label.name == NO_DEFECT_CLASS and item.split == Split.TEST]
    defects = [item for item in items if item.label.name != NO_DEFECT_CLASS]
    return _stable_sample(good, GATE_MAX_IMAGES), _stable_sample(defects, GATE_MAX_IMAGES)


def anomaly_gate_rule():
    """The anomaly gate's rule from the settings (``STEELQC_ANOMALY_GATE_<FIELD>`` for each field)."""
    from mlcore.anomaly_gate import AnomalyGateRule

    return AnomalyGateRule(**{name: getattr(settings, f"STEELQC_ANOMALY_GATE_{name.upper()}")
                              for name in AnomalyGateRule.__dataclass_fields__})


def anomaly_gate_and_promote(*, candidate: ModelVersion, snapshot: DatasetSnapshot, actor=None) -> dict:
    """Score the held-out images with the candidate and the active anomaly model, decide, promote if
    passed; returns the decision (also stored on the candidate as ``metrics["gate"]``)."""
    from mlcore.anomaly_gate import decide_anomaly

    good, defects = anomaly_gate_images(snapshot)
    champion = (ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE, kind=ModelVersionKind.ANOMALY)
                .exclude(pk=candidate.pk).first())
    with tempfile.TemporaryDirectory(prefix="steelqc-anomaly-gate-") as folder:
        names = [item.image.file.name for item in good + defects]
        paths_by_name = local_copies(names=names, folder=Path(folder))
        paths = [paths_by_name[name] for name in names]
        candidate_scores = version_score_files(version=candidate, paths=paths) if paths else []
        champion_scores = (version_score_files(version=champion, paths=paths) if paths else []) if champion else None
    split = len(good)
    decision = decide_anomaly(
        candidate_good=candidate_scores[:split], candidate_defects=candidate_scores[split:],
        champion_good=champion_scores[:split] if champion else None,
        champion_defects=champion_scores[split:] if champion else None, rule=anomaly_gate_rule(),
    ).to_dict()
    defect_classes: dict[str, int] = {}
    for item in defects:
        defect_classes[item.label.name] = defect_classes.get(item.label.name, 0) + 1
    decision.update(champion_version=champion.number if champion else None, candidate_version=candidate.number,
                    defect_classes=dict(sorted(defect_classes.items())))

    with transaction.atomic():
        lock_for_transaction(MODEL_REGISTRY_LOCK)
        current = (ModelVersion.objects.select_for_update()
                   .filter(status=ModelVersionStatus.ACTIVE, kind=ModelVersionKind.ANOMALY).first())
        if decision["passed"] and current is not None and current.pk != getattr(champion, "pk", None):
            # Someone promoted another anomaly model while we evaluated: do not overrule them.
            decision["passed"] = False
            decision["reasons"].append(f"v{current.number} was promoted during evaluation; promote by hand if wanted")
        decision["promoted"] = bool(decision["passed"])
        candidate.metrics = {**candidate.metrics, "gate": decision}
        candidate.save(update_fields=["metrics"])
        if decision["promoted"]:
            model_version_promote(version=candidate, actor=actor)
    return decision
