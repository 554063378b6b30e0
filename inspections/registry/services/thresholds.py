"""Per-class thresholds of a model version: what they are, where they came from, how they were
chosen (the validation curve) and who changed them. Two kinds, set the same way:

- the decision threshold (``decision_thresholds``): a prediction of the class whose confidence is
  below it goes to review;
- the box threshold (``box_thresholds``): the model's boxes of the class scoring below it are
  hidden in the review view and cannot be accepted (``review/services/boxes.py``). Its default
  is the score the detection shows by default, ``mlcore.artefact.KEPT_SCORE``.

A version's thresholds live on the version row (class -> value; a class not named uses its
default), so the inference worker, which reads the active version's row for every batch, judges
the next image by a change without a restart. Every change is one ``DecisionThresholdChange`` row
per class (its ``kind``, old -> new, who, when, note); that table is only ever appended to.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction

from inspections.catalog.models import Split
from inspections.errors import ApplicationError, StaleRevision
from inspections.registry.models import DecisionThresholdChange, ModelVersion, ModelVersionKind, ThresholdKind
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
# A box threshold of 0 shows every box the model reported (it drops boxes under
# mlcore.detection.MIN_SCORE itself); 1 hides every box that is not certain.
BOX_THRESHOLD_MIN = 0.0
BOX_THRESHOLD_MAX = 1.0


@dataclass(frozen=True)
class _Kind:
    """Where one kind of threshold lives on the version row and what values it takes."""

    kind: str            # ThresholdKind
    field: str           # the version's JSON field, class -> value
    revision_field: str  # bumped on every change; If-Match compares it
    low: float
    high: float
    why_low: str         # said when a value is below ``low``


DECISION = _Kind(ThresholdKind.DECISION, "decision_thresholds", "thresholds_revision", THRESHOLD_MIN, THRESHOLD_MAX,
                 f" (below {THRESHOLD_MIN} no prediction would go to review anyway)")
BOX = _Kind(ThresholdKind.BOX, "box_thresholds", "box_thresholds_revision", BOX_THRESHOLD_MIN, BOX_THRESHOLD_MAX, "")


@dataclass(frozen=True)
class ClassThreshold:
    name: str
    threshold: float
    default: float
    curve: dict | None  # mlcore.thresholds.threshold_curves' entry for the class


@dataclass(frozen=True)
class ClassBoxThreshold:
    name: str
    threshold: float
    default: float


@dataclass(frozen=True)
class VersionBoxThresholds:
    version: ModelVersion
    revision: int
    default: float
    classes: list[ClassBoxThreshold]


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


@functools.cache
def box_threshold_default() -> float:
    """``mlcore.artefact.KEPT_SCORE``: the score from which the detection shows a box by default
    (defined where no Keras is imported, so a web process rendering a page loads no TensorFlow)."""
    from mlcore.artefact import KEPT_SCORE

    return float(KEPT_SCORE)


def version_box_thresholds(*, version: ModelVersion) -> VersionBoxThresholds:
    """Every class of ``version`` with its current and default box threshold."""
    default = box_threshold_default()
    current = version.box_thresholds or {}
    return VersionBoxThresholds(
        version=version, revision=version.box_thresholds_revision, default=default,
        classes=[ClassBoxThreshold(name=name, threshold=float(current.get(name, default)), default=default)
                 for name in version.classes],
    )


def box_threshold_of(*, version: ModelVersion, label: str) -> float:
    """The box threshold of class ``label`` on ``version`` (the default for a class it does not set)."""
    return float((version.box_thresholds or {}).get(label, box_threshold_default()))


def threshold_history(*, version: ModelVersion, kind: str = ThresholdKind.DECISION):
    return (DecisionThresholdChange.objects.filter(model_version=version, kind=kind)
            .select_related("changed_by"))


def _defaults(spec: _Kind, version: ModelVersion) -> dict[str, float]:
    if spec is BOX:
        return {name: box_threshold_default() for name in version.classes}
    return version_default_thresholds(version=version, global_threshold=version_global_threshold(version=version))


def _clean(version: ModelVersion, thresholds, note, spec: _Kind = DECISION) -> tuple[dict[str, float], str]:
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
            problems[name] = f"The threshold must be a number from {spec.low:g} to {spec.high:g}."
        elif not spec.low <= value <= spec.high:
            problems[name] = f"The threshold must be from {spec.low:g} to {spec.high:g}, got {value!r}{spec.why_low}."
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


def _thresholds_set(spec: _Kind, *, version: ModelVersion, thresholds, note, actor,
                    expected_revision: int | None) -> ModelVersion:
    cleaned, note = _clean(version, thresholds, note, spec)
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        current_revision = getattr(locked, spec.revision_field)
        if expected_revision is not None and expected_revision != current_revision:
            raise StaleRevision(
                f"The thresholds of {locked.name} changed meanwhile (revision {current_revision}, "
                f"you sent {expected_revision}); load them again.", code="thresholds_changed",
                details={"revision": current_revision})
        defaults = _defaults(spec, locked)
        current = dict(getattr(locked, spec.field) or {})
        changed = {name: value for name, value in cleaned.items() if current.get(name, defaults[name]) != value}
        if changed:
            revision = current_revision + 1
            DecisionThresholdChange.objects.bulk_create([
                DecisionThresholdChange(model_version=locked, kind=spec.kind, class_name=name,
                                        old_threshold=float(current.get(name, defaults[name])), new_threshold=value,
                                        changed_by=user, note=note, revision=revision)
                for name, value in sorted(changed.items())
            ])
            current.update(changed)
            setattr(locked, spec.field, current)
            setattr(locked, spec.revision_field, revision)
            locked.save(update_fields=[spec.field, spec.revision_field])
    return locked


def version_thresholds_set(*, version: ModelVersion, thresholds, note: str = "", actor=None,
                           expected_revision: int | None = None) -> ModelVersion:
    """Set the named classes' decision thresholds (others keep theirs), one audit row per changed class.

    All or nothing: any bad class or value changes nothing. ``expected_revision`` (from the
    client's If-Match) guards against overwriting a change the caller has not seen (412).
    """
    return _thresholds_set(DECISION, version=version, thresholds=thresholds, note=note, actor=actor,
                           expected_revision=expected_revision)


def version_box_thresholds_set(*, version: ModelVersion, thresholds, note: str = "", actor=None,
                               expected_revision: int | None = None) -> ModelVersion:
    """Set the named classes' box thresholds (0..1; others keep theirs), one audit row (kind box) per
    changed class; all or nothing, ``expected_revision`` compared with ``box_thresholds_revision``."""
    return _thresholds_set(BOX, version=version, thresholds=thresholds, note=note, actor=actor,
                           expected_revision=expected_revision)


def _carry(spec: _Kind, *, source: ModelVersion, target: ModelVersion, user) -> dict[str, float]:
    own = dict(getattr(target, spec.field) or {})
    carried = {name: float(value) for name, value in (getattr(source, spec.field) or {}).items()
               if name in set(target.classes) and name not in own}
    if not carried:
        return {}
    defaults = _defaults(spec, target)
    revision = getattr(target, spec.revision_field) + 1
    DecisionThresholdChange.objects.bulk_create([
        DecisionThresholdChange(model_version=target, kind=spec.kind, class_name=name,
                                old_threshold=float(defaults[name]), new_threshold=value, changed_by=user,
                                note=f"carried from {source.name}", revision=revision)
        for name, value in sorted(carried.items())
    ])
    setattr(target, spec.field, {**own, **carried})
    setattr(target, spec.revision_field, revision)
    target.save(update_fields=[spec.field, spec.revision_field])
    return carried


def thresholds_carry_forward(*, source: ModelVersion, target: ModelVersion, actor=None) -> dict[str, float]:
    """Give ``target`` the decision and box thresholds a person set on ``source`` for the classes
    both know, unless ``target`` already has its own value for the class; one history row per class
    and kind, noted "carried from vN". Classes only ``target`` knows keep their defaults. Call inside
    the transaction that promotes ``target`` (both rows locked). Returns the decision thresholds
    carried."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    _carry(BOX, source=source, target=target, user=user)
    return _carry(DECISION, source=source, target=target, user=user)
