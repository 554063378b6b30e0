"""Scoring a candidate against the active version on the same frozen test split, and promoting
it only when the gate says it is no worse."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction

from inspections.locks import MODEL_REGISTRY_LOCK, lock_for_transaction
from inspections.models import DatasetSnapshot, LabelSource, ModelVersion, ModelVersionStatus, Split
from inspections.services.artefacts import artefact_local_dir
from inspections.services.model_versions import model_version_promote
from inspections.services.stored_files import local_copies

logger = logging.getLogger(__name__)


def _predict_labels(version: ModelVersion, paths: list[Path]) -> list[str]:
    from mlcore.inference import Classifier

    classifier = Classifier.load(artefact_local_dir(prefix=version.artifact_path))
    return [result.label for result in classifier.predict_files(paths)]


def gate_and_promote(*, candidate: ModelVersion, snapshot: DatasetSnapshot, actor=None) -> dict:
    """Evaluate, decide, promote if passed; returns the decision (also stored on the candidate)."""
    from mlcore.gate import GateRule, decide

    items = list(snapshot.items.filter(split=Split.TEST).select_related("image", "label").order_by("id"))
    rule = GateRule(
        accuracy_tolerance=settings.STEELQC_GATE_ACCURACY_TOLERANCE,
        recall_tolerance=settings.STEELQC_GATE_RECALL_TOLERANCE,
        min_test_images=settings.STEELQC_GATE_MIN_TEST_IMAGES,
    )
    champion = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exclude(pk=candidate.pk).first()
    labels = [item.label.name for item in items]
    with tempfile.TemporaryDirectory(prefix="steelqc-gate-") as folder:
        paths_by_name = local_copies(names=[item.image.file.name for item in items], folder=Path(folder))
        paths = [paths_by_name[item.image.file.name] for item in items]
        candidate_predictions = _predict_labels(candidate, paths)
        champion_predictions = _predict_labels(champion, paths) if champion else None
    decision = decide(
        labels=labels, candidate_predictions=candidate_predictions, candidate_classes=candidate.classes,
        champion_predictions=champion_predictions, champion_classes=champion.classes if champion else None, rule=rule,
    ).to_dict()
    decision.update(
        champion_version=champion.number if champion else None,
        candidate_version=candidate.number,
        test_images=len(items),
        human_confirmed_test_labels=sum(1 for item in items if item.image.label_source == LabelSource.REVIEW),
    )

    with transaction.atomic():
        lock_for_transaction(MODEL_REGISTRY_LOCK)
        current = ModelVersion.objects.select_for_update().filter(status=ModelVersionStatus.ACTIVE).first()
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
