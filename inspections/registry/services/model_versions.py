"""The model registry: register a trained artefact, promote it, roll back. One active per kind."""

from __future__ import annotations

import json
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from inspections.catalog.models import ImageStatus, InspectionImage, LabelSource
from inspections.catalog.services.classes import defect_classes_ensure
from inspections.errors import ApplicationError, Conflict
from inspections.locks import MODEL_REGISTRY_LOCK, lock_for_transaction
from inspections.queueing import inference_enqueue, promotion_event_enqueue
from inspections.registry.models import (
    OVERRIDE_REASON_MAX_LENGTH,
    ModelVersion,
    ModelVersionKind,
    ModelVersionStatus,
    Retirement,
)
from inspections.registry.services.artefact_storage import artefact_delete, artefact_store
from inspections.registry.services.thresholds import thresholds_carry_forward
from mlcore.artefact import ANOMALY_KIND, CLASSES_FILE, CONFIG_FILE, METRICS_FILE  # plain JSON: no TensorFlow here


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ApplicationError(f"{path.parent} is not a model artefact folder ({error}).",
                               code="invalid_artefact") from None


def _read_artefact_facts(model_dir: Path) -> tuple[str, list[str], dict, dict]:
    """(kind, classes, config, metrics) of an artefact folder. Its config.json says which kind it
    is: an anomaly model's says ``"kind": "anomaly"`` (``python -m mlcore anomaly-train``); a
    classifier's names no kind and has its class list beside it."""
    config = _read_json(model_dir / CONFIG_FILE)
    if isinstance(config, dict) and config.get("kind") == ANOMALY_KIND:
        return ModelVersionKind.ANOMALY, [], config, _anomaly_metrics(model_dir)
    classes = _read_json(model_dir / CLASSES_FILE)
    metrics = _read_json(model_dir / METRICS_FILE) if (model_dir / METRICS_FILE).is_file() else {}
    return ModelVersionKind.CLASSIFIER, classes, config, metrics


def _anomaly_metrics(model_dir: Path) -> dict:
    """What an anomaly artefact measured of itself: its threshold and how it was calibrated."""
    from mlcore.anomaly import AnomalyModelError, read_anomaly_config

    try:
        config = read_anomaly_config(model_dir)  # refuses an incomplete folder before anything is stored
    except AnomalyModelError as error:
        raise ApplicationError(str(error), code="invalid_artefact") from None
    training = config.get("training") or {}
    return {"anomaly": {"threshold": config["threshold"], "false_alarm_rate": config["false_alarm_rate"],
                        "calibration": config.get("calibration") or {}, "memory": config.get("memory") or {},
                        "good_images": training.get("good_images") or {},
                        "input_shape": (config.get("backbone") or {}).get("input_shape")}}


def model_version_register(*, model_dir: Path, created_by=None, notes: str = "") -> ModelVersion:
    """Store a trained artefact folder (a classifier or an anomaly model, as its config.json says)
    and record it as a candidate version."""
    model_dir = Path(model_dir)
    kind, classes, config, metrics = _read_artefact_facts(model_dir)
    if kind == ModelVersionKind.CLASSIFIER:
        defect_classes_ensure(names=classes)
    for attempt in range(5):
        number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        try:
            return _register_as(number=number, kind=kind, model_dir=model_dir, classes=classes, config=config,
                                metrics=metrics, created_by=created_by, notes=notes)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _register_as(*, number: int, kind: str, model_dir: Path, classes, config, metrics, created_by,
                 notes) -> ModelVersion:
    # The unique version number is taken first; a concurrent registration that took it too
    # fails here before any file is written, and tries the next number.
    prefix = f"models/v{number}-{timezone.now():%Y%m%d%H%M%S%f}"
    names: list[str] = []
    try:
        with transaction.atomic():
            version = ModelVersion.objects.create(
                number=number, kind=kind, artifact_path=prefix, backbone=config["backbone"]["name"],
                weight_source=config["backbone"]["weight_source"], classes=classes, metrics=metrics,
                created_by=created_by, notes=notes,
            )
            names = artefact_store(local_dir=model_dir, prefix=prefix)
    except BaseException:
        artefact_delete(names=names)
        raise
    return version


def _acting_user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def gate_refusal_reasons(version: ModelVersion) -> list[str] | None:
    """Why the promotion gate held ``version`` back (its stored decision, ``metrics["gate"]``,
    written with the decision to promote or not), or None when the gate passed it or never
    judged it (a version registered by hand, the first one)."""
    decision = (version.metrics or {}).get("gate")
    if not decision or decision.get("passed", decision.get("promoted", True)):
        return None
    return [str(reason) for reason in decision.get("reasons") or []]


def _override_reason_clean(override_reason: str | None) -> str | None:
    if override_reason is None:
        return None
    reason = override_reason.strip()
    if not reason:
        raise ApplicationError("The reason for promoting over the gate's refusal is empty; say why.",
                               code="invalid_override_reason")
    if len(reason) > OVERRIDE_REASON_MAX_LENGTH:
        raise ApplicationError(f"The reason for promoting over the gate's refusal is longer than "
                               f"{OVERRIDE_REASON_MAX_LENGTH} characters.", code="invalid_override_reason")
    return reason


def model_version_promote(*, version: ModelVersion, actor=None, repredict_review_queue: bool = False,
                          override_reason: str | None = None) -> ModelVersion:
    """Make ``version`` the active version of its kind; the previous one of that kind is retired
    (a classifier and an anomaly model serve side by side). Atomic.

    A version the promotion gate refused (``gate_refusal_reasons``) is promoted only with an
    ``override_reason``: without one this raises ``Conflict`` ``gate_refused`` with the gate's
    reasons in ``details`` and changes nothing; with one, the reason, ``actor`` and the time are
    recorded on the version (the latest override replaces an earlier one). For a version the gate
    passed or never judged the reason is not needed and not recorded: there was nothing to
    override. A blank reason is refused (``invalid_override_reason``) whatever the version.

    ``actor`` (a user, or None for the system) is recorded as who promoted ``version`` and who
    retired the previous one. The thresholds a person set on the previous version carry forward
    for the classes both know (``thresholds_carry_forward``).

    After commit: images still waiting for a prediction are queued for the new version, the
    promotion webhook (if configured) is sent, and with ``repredict_review_queue`` (a classifier)
    the images waiting for a human get a fresh prediction from the new version.
    """
    return _activate(version=version, actor=actor, repredict_review_queue=repredict_review_queue,
                     retirement=Retirement.REPLACED, gate_override=_override_reason_clean(override_reason),
                     heed_gate=True)


def _activate(*, version: ModelVersion, actor, retirement: str, repredict_review_queue: bool = False,
              gate_override: str | None = None, heed_gate: bool = False) -> ModelVersion:
    """Retire the active version of ``version``'s kind (``retirement`` says why) and activate
    ``version``, under the registry lock; with ``heed_gate``, a version the gate refused needs
    ``gate_override``."""
    actor, now = _acting_user(actor), timezone.now()
    with transaction.atomic():
        lock_for_transaction(MODEL_REGISTRY_LOCK)
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        locked = list(ModelVersion.objects.select_for_update()
                      .filter(status=ModelVersionStatus.ACTIVE, kind=version.kind).order_by())
        if version.status == ModelVersionStatus.ACTIVE:
            return version
        # Read under the lock: the gate writes its decision under the same lock.
        refused = gate_refusal_reasons(version) if heed_gate else None
        if refused is not None and gate_override is None:
            raise Conflict(f"The promotion gate refused {version.name}; to promote it anyway, give a reason "
                           "(override_reason).", code="gate_refused", details={"reasons": refused})
        for current in locked:
            current.status = ModelVersionStatus.RETIRED
            current.retired_at, current.retired_by, current.retirement = now, actor, retirement
            current.save(update_fields=["status", "retired_at", "retired_by", "retirement"])
        version.status = ModelVersionStatus.ACTIVE
        version.promoted_at, version.promoted_by = now, actor
        version.retired_at, version.retired_by, version.retirement = None, None, Retirement.NONE
        fields = ["status", "promoted_at", "promoted_by", "retired_at", "retired_by", "retirement"]
        if refused is not None:
            version.promotion_override_reason = gate_override
            version.promotion_override_by, version.promotion_override_at = actor, now
            fields += ["promotion_override_reason", "promotion_override_by", "promotion_override_at"]
        version.save(update_fields=fields)
        if retirement == Retirement.REPLACED and version.kind == ModelVersionKind.CLASSIFIER:
            # What an admin tuned on the version going out stays tuned (a rollback returns to the
            # older version's own thresholds instead).
            for current in locked:
                thresholds_carry_forward(source=current, target=version, actor=actor)
        transaction.on_commit(_queue_pending_images)
        transaction.on_commit(lambda: promotion_event_enqueue(version_id=version.pk))
        if repredict_review_queue and version.kind == ModelVersionKind.CLASSIFIER:
            transaction.on_commit(_queue_review_queue)
    return version


def model_version_rollback(*, actor=None, kind: str = ModelVersionKind.CLASSIFIER) -> ModelVersion:
    """Re-activate the version of ``kind`` that was active before the current one; ``actor`` is
    recorded as who rolled back (the current version's ``retired_by``, ``retirement``
    "rolled_back"). The gate is not asked again: the version served before, by a person's or the
    gate's choice."""
    if kind not in ModelVersionKind.values:
        raise ApplicationError(f"Unknown model kind {kind!r}; one of {', '.join(ModelVersionKind.values)}.",
                               code="invalid_kind")
    with transaction.atomic():
        lock_for_transaction(MODEL_REGISTRY_LOCK)
        current = ModelVersion.objects.select_for_update().filter(status=ModelVersionStatus.ACTIVE, kind=kind).first()
        previous = (
            ModelVersion.objects.filter(status=ModelVersionStatus.RETIRED, kind=kind, promoted_at__isnull=False)
            .exclude(pk=getattr(current, "pk", None))
            .order_by("-promoted_at")
            .first()
        )
        if previous is None:
            what = "anomaly model" if kind == ModelVersionKind.ANOMALY else "version"
            raise Conflict(f"There is no earlier active {what} to roll back to.", code="no_previous_version")
        return _activate(version=previous, actor=actor, retirement=Retirement.ROLLED_BACK)


def _queue_pending_images() -> None:
    inference_enqueue(image_ids=list(
        InspectionImage.objects.filter(status=ImageStatus.PENDING).order_by("id").values_list("id", flat=True)
    ))


def _queue_review_queue() -> None:
    """Images whose latest prediction asked for review and that no person has labelled yet."""
    waiting = InspectionImage.objects.filter(latest_needs_review=True).exclude(label_source=LabelSource.REVIEW)
    inference_enqueue(image_ids=list(waiting.order_by("id").values_list("id", flat=True)))
