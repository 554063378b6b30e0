"""Per-class decision thresholds of a model version: what they are, where they came from, how
they were chosen (the validation curve) and who changed them.

A version's thresholds live on the version row (``decision_thresholds``, class -> value; a
class not named uses its default), so the inference worker, which reads the active version's
row for every batch, judges the next image by a change without a restart. Every change is one
``DecisionThresholdChange`` row per class (old -> new, who, when, note); that table is only
ever appended to.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction

from inspections.catalog.models import Split
from inspections.errors import ApplicationError, StaleRevision
from inspections.registry.models import DecisionThresholdChange, ModelVersion, ModelVersionKind
from mlcore.artefact import CONFIG_FILE, DEFAULT_CONFIDENCE_THRESHOLD
from mlcore.thresholds import threshold_curves

NOTE_MAX_LENGTH = 500
# A prediction of a class whose confidence is below the class's threshold goes to review. The
# top class's softmax confidence is never below 1/K (K classes: 1/7 here, 1/100 at most in any
# plausible catalogue), so a threshold under 0.01 means the same as 0.01 ("never review") and
# is only ever a slip: 0, a denormal such as 5e-324, or 1e-400, which JSON parses to 0.0. 1.0
# is the top: confidence never exceeds it, so 1.0 already reviews every prediction.
THRESHOLD_MIN = 0.01
THRESHOLD_MAX = 1.0


@dataclass(frozen=True)
class ClassThreshold:
    name: str
    threshold: float
    default: float
    curve: dict | None  # mlcore.thresholds.threshold_curves' entry for the class


@dataclass(frozen=True)
class VersionThresholds:
    version: ModelVersion
    revision: int
    global_threshold: float
    curve_source: str | None  # "training" (validation split at training time), "predictions", None: no curve
    curve_images: int
    classes: list[ClassThreshold]


def version_global_threshold(*, version: ModelVersion) -> float:
    """The confidence threshold the artefact was trained with (its config.json), the fallback
    for every class the version does not set."""
    name = f"{version.artifact_path}/{CONFIG_FILE}"
    try:
        with default_storage.open(name, "rb") as handle:
            review = json.load(handle).get("review") or {}
        return float(review.get("confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD))
    except (OSError, ValueError, TypeError, AttributeError):
        return DEFAULT_CONFIDENCE_THRESHOLD


def version_default_thresholds(*, version: ModelVersion, global_threshold: float) -> dict[str, float]:
    """Per class, the value a version starts with: what training recorded, else the global one."""
    recorded = ((version.metrics or {}).get("thresholds") or {}).get("defaults") or {}
    return {name: float(recorded.get(name, global_threshold)) for name in version.classes}


def _curves_from_predictions(version: ModelVersion) -> tuple[dict | None, int]:
    """For versions trained before curves were recorded: the curve from this version's stored
    predictions of labelled validation images, when there are any."""
    rows = list(
        version.predictions.filter(image__split=Split.VAL, image__label__isnull=False,
                                  image__excluded=False)
        .values_list("probabilities", "image__label__name")
    )
    index = {name: i for i, name in enumerate(version.classes)}
    usable = [(probabilities, label) for probabilities, label in rows if label in index]
    if not usable:
        return None, 0
    matrix = [[float(probabilities.get(name, 0.0)) for name in version.classes] for probabilities, _ in usable]
    return threshold_curves(matrix, [index[label] for _, label in usable], classes=version.classes), len(usable)


def version_thresholds(*, version: ModelVersion) -> VersionThresholds:
    """Every class of ``version`` with its current and default threshold and its curve."""
    global_threshold = version_global_threshold(version=version)
    defaults = version_default_thresholds(version=version, global_threshold=global_threshold)
    recorded = (version.metrics or {}).get("thresholds") or {}
    curves, source, images = recorded.get("curves"), "training", int(recorded.get("images") or 0)
    if not curves:
        curves, images = _curves_from_predictions(version)
        source = "predictions" if curves else None
    current = version.decision_thresholds or {}
    return VersionThresholds(
        version=version, revision=version.thresholds_revision, global_threshold=global_threshold,
        curve_source=source, curve_images=images,
        classes=[ClassThreshold(name=name, threshold=float(current.get(name, defaults[name])), default=defaults[name],
                                curve=(curves or {}).get(name)) for name in version.classes],
    )


def threshold_history(*, version: ModelVersion):
    return DecisionThresholdChange.objects.filter(model_version=version).select_related("changed_by")


def _clean(version: ModelVersion, thresholds, note) -> tuple[dict[str, float], str]:
    if version.kind == ModelVersionKind.ANOMALY:
        raise ApplicationError(f"{version.name} is an anomaly model: it has no classes to set thresholds for (its "
                               "threshold is set on held-out good images when it is trained).", code="not_a_classifier")
    if not isinstance(thresholds, dict) or not thresholds:
        raise ApplicationError("Send \"thresholds\": an object of class name -> threshold with at least one class.",
                               code="invalid_thresholds", details={"thresholds": ["Must be a non-empty object."]})
    problems: dict[str, str] = {}
    cleaned: dict[str, float] = {}
    for name, value in thresholds.items():
        if name not in version.classes:
            problems[name] = f"{version.name} has no class {name!r} (its classes: {', '.join(version.classes)})."
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems[name] = f"The threshold must be a number from {THRESHOLD_MIN} to {THRESHOLD_MAX:g}."
        elif not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
            problems[name] = (f"The threshold must be from {THRESHOLD_MIN} to {THRESHOLD_MAX:g}, got {value!r} "
                              f"(below {THRESHOLD_MIN} no prediction would go to review anyway).")
        else:
            cleaned[name] = float(value)
    if problems:
        raise ApplicationError("Some thresholds cannot be used: " + " ".join(f"{k}: {v}" for k, v in problems.items()),
                               code="invalid_thresholds", details=problems)
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > NOTE_MAX_LENGTH:
        raise ApplicationError(f"The note must be text of at most {NOTE_MAX_LENGTH} characters.",
                               code="invalid_note", details={"note": ["Too long or not text."]})
    return cleaned, note.strip()


def version_thresholds_set(*, version: ModelVersion, thresholds, note: str = "", actor=None,
                           expected_revision: int | None = None) -> ModelVersion:
    """Set the named classes' thresholds (others keep theirs), one audit row per changed class.

    All or nothing: any bad class or value changes nothing. ``expected_revision`` (from the
    client's If-Match) guards against overwriting a change the caller has not seen (412).
    """
    cleaned, note = _clean(version, thresholds, note)
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if expected_revision is not None and expected_revision != locked.thresholds_revision:
            raise StaleRevision(
                f"The thresholds of {locked.name} changed meanwhile (revision {locked.thresholds_revision}, "
                f"you sent {expected_revision}); load them again.", code="thresholds_changed",
                details={"revision": locked.thresholds_revision})
        defaults = version_default_thresholds(version=locked, global_threshold=version_global_threshold(version=locked))
        current = dict(locked.decision_thresholds or {})
        changed = {name: value for name, value in cleaned.items() if current.get(name, defaults[name]) != value}
        if changed:
            revision = locked.thresholds_revision + 1
            DecisionThresholdChange.objects.bulk_create([
                DecisionThresholdChange(model_version=locked, class_name=name,
                                        old_threshold=float(current.get(name, defaults[name])), new_threshold=value,
                                        changed_by=user, note=note, revision=revision)
                for name, value in sorted(changed.items())
            ])
            current.update(changed)
            locked.decision_thresholds = current
            locked.thresholds_revision = revision
            locked.save(update_fields=["decision_thresholds", "thresholds_revision"])
    return locked


def thresholds_carry_forward(*, source: ModelVersion, target: ModelVersion, actor=None) -> dict[str, float]:
    """Give ``target`` the thresholds a person set on ``source`` for the classes both know, unless
    ``target`` already has its own value for the class; one history row per class, noted
    "carried from vN". Classes only ``target`` knows keep their defaults. Call inside the
    transaction that promotes ``target`` (both rows locked). Returns what was carried."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    own = dict(target.decision_thresholds or {})
    carried = {name: float(value) for name, value in (source.decision_thresholds or {}).items()
               if name in set(target.classes) and name not in own}
    if not carried:
        return {}
    defaults = version_default_thresholds(version=target, global_threshold=version_global_threshold(version=target))
    revision = target.thresholds_revision + 1
    DecisionThresholdChange.objects.bulk_create([
        DecisionThresholdChange(model_version=target, class_name=name, old_threshold=float(defaults[name]),
                                new_threshold=value, changed_by=user, note=f"carried from {source.name}",
                                revision=revision)
        for name, value in sorted(carried.items())
    ])
    target.decision_thresholds = {**own, **carried}
    target.thresholds_revision = revision
    target.save(update_fields=["decision_thresholds", "thresholds_revision"])
    return carried
