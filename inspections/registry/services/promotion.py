"""Scoring a candidate against the active version on the same frozen test split, and promoting
it only when the gate says it is no worse."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from inspections.catalog.models import LabelSource, Split
from inspections.catalog.selectors import box_tuples_for_images, retired_class_names
from inspections.catalog.services.stored_files import local_copies
from inspections.locks import MODEL_REGISTRY_LOCK, lock_for_transaction
from inspections.registry.models import DatasetSnapshot, ModelVersion, ModelVersionStatus
from inspections.registry.services.classifiers import version_predict_files
from inspections.registry.services.model_versions import model_version_promote

logger = logging.getLogger(__name__)


def _predict(version: ModelVersion, paths: list[Path]) -> tuple[list[str], list[list] | None]:
    """(predicted labels, predicted boxes per image or None without a detection head)."""
    from mlcore.detection import DetectedBox

    predictions = version_predict_files(version=version, paths=paths)
    boxes = None
    if predictions.detects_boxes:
        boxes = [[DetectedBox(label=b["label"], box=tuple(b["box"]), score=b["score"]) for b in r.boxes]
                 for r in predictions.results]
    return [result.label for result in predictions.results], boxes


def _map50(truth: list[list[tuple]], predicted: list[list] | None, sizes: list[tuple[int, int]]) -> float | None:
    """mAP@0.5 on the boxed test images; None for a version without a head or no boxed images."""
    from mlcore.detection import detection_metrics

    if predicted is None or not any(truth):
        return None
    classes = sorted({box[0] for boxes in truth for box in boxes} | {b.label for found in predicted for b in found})
    return detection_metrics(truth, predicted, classes=classes, sizes=sizes)["map50"]


def _test_boxes(items) -> tuple[list[int], list[list[tuple]], list[tuple[int, int]]]:
    """(indices of test items with defect boxes, their boxes, image sizes): the images the gate's
    mAP is measured on (the boxes as they are now; the snapshot freezes labels, not boxes)."""
    boxes = box_tuples_for_images(image_ids=[item.image_id for item in items])
    rows, truth, sizes = [], [], []
    for index, item in enumerate(items):
        if boxes.get(item.image_id):
            rows.append(index)
            truth.append(list(boxes[item.image_id]))
            sizes.append((item.image.width, item.image.height))
    return rows, truth, sizes


def gate_rule():
    """The promotion gate's rule from the settings (``STEELQC_GATE_<FIELD>`` for each field)."""
    from mlcore.gate import GateRule

    return GateRule(**{name: getattr(settings, f"STEELQC_GATE_{name.upper()}") for name in GateRule.__dataclass_fields__})


def gate_and_promote(*, candidate: ModelVersion, snapshot: DatasetSnapshot, actor=None) -> dict:
    """Evaluate, decide, promote if passed; returns the decision (also stored on the candidate)."""
    from mlcore.gate import decide

    items = list(snapshot.items.filter(split=Split.TEST).select_related("image", "label").order_by("id"))
    rule = gate_rule()
    champion = (ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE, kind=candidate.kind)
                .exclude(pk=candidate.pk).first())
    labels = [item.label.name for item in items]
    with tempfile.TemporaryDirectory(prefix="steelqc-gate-") as folder:
        paths_by_name = local_copies(names=[item.image.file.name for item in items], folder=Path(folder))
        paths = [paths_by_name[item.image.file.name] for item in items]
        candidate_predictions, candidate_boxes = _predict(candidate, paths)
        champion_predictions, champion_boxes = _predict(champion, paths) if champion else (None, None)
    boxed, truth, sizes = _test_boxes(items)

    def on_boxed(predicted):
        return None if predicted is None else [predicted[i] for i in boxed]

    decision = decide(
        labels=labels, candidate_predictions=candidate_predictions, candidate_classes=candidate.classes,
        champion_predictions=champion_predictions, champion_classes=champion.classes if champion else None, rule=rule,
        candidate_map50=_map50(truth, on_boxed(candidate_boxes), sizes),
        champion_map50=_map50(truth, on_boxed(champion_boxes), sizes),
        retired_classes=retired_class_names(),
    ).to_dict()
    decision["detection"]["boxed_test_images"] = len(boxed)
    decision.update(
        champion_version=champion.number if champion else None,
        candidate_version=candidate.number,
        test_images=len(items),
        human_confirmed_test_labels=sum(1 for item in items if item.image.label_source == LabelSource.REVIEW),
    )

    with transaction.atomic():
        lock_for_transaction(MODEL_REGISTRY_LOCK)
        current = (ModelVersion.objects.select_for_update()
                   .filter(status=ModelVersionStatus.ACTIVE, kind=candidate.kind).first())
        if decision["passed"] and current is not None and champion is not None and current.pk != champion.pk:
            # Someone promoted another version while we evaluated: do not overrule them.
            decision["passed"] = False
            decision["reasons"].append(f"v{current.number} was promoted during evaluation; promote by hand if wanted")
        decision["promoted"] = bool(decision["passed"])
        candidate.metrics = {**candidate.metrics, "gate": decision}
        candidate.save(update_fields=["metrics"])
        if decision["promoted"]:
            model_version_promote(version=candidate, actor=actor)
    return decision
