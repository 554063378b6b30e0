"""People changing defect boxes, in versioned, all-or-nothing sets, and accepting the model's.

Every accepted set of changes bumps ``InspectionImage.boxes_version`` once and records one append-only
``DefectBoxChange`` per change; a client that sends a stale version gets a 409 and nothing changes.

Accepting a box the model found is an ``add`` naming ``from_model`` (the version's id): the box must
be one of that version's boxes for the image (same class, same place) scoring at least the class's
box threshold on that version (``registry/services/thresholds.py``; below it the review view hides
the box); it is stored with source ``model``, the version and the person who accepted it, and its
history says ``from_model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from inspections.access import roles
from inspections.catalog.models import BoxAction, BoxSource, DefectBox, DefectBoxChange, DefectClass, InspectionImage
from inspections.catalog.services.boxes import (
    EDGE_TOLERANCE,
    MAX_BOXES_PER_IMAGE,
    Box,
    BoxRefused,
    box_from_fractions,
    box_from_pixels,
)
from inspections.catalog.services.classes import defect_class_name_normalise
from inspections.errors import ApplicationError, Conflict, PermissionDenied
from inspections.registry.models import ModelVersion
from inspections.registry.services.thresholds import box_threshold_of
from inspections.review import selectors as review_selectors
from inspections.review.models import Prediction
from inspections.review.services.version_conflicts import version_conflict_message

MAX_CHANGES = 500  # per request
UNITS = ("fraction", "pixels")
OPS = ("add", "move", "relabel", "delete")
# How far an accepted box may sit from the model's own: pixel-unit clients round box_px to 0.01 px.
MODEL_BOX_TOLERANCE = 1e-4


def predicted_box_payload(found: dict, image: InspectionImage, version: ModelVersion, *, accepted: bool) -> dict:
    """How the API shows one of a model version's boxes (``Prediction.boxes`` entries), with the
    class's box threshold and whether the box scores at least that (the review view hides the others)."""
    box = found["box"]
    marked = _with_threshold(found, version)
    return {
        "label": found["label"],
        "box": box,
        "box_px": [round(v * size, 2) for v, size in zip(box, (image.width, image.height) * 2)],
        "score": found["score"],
        "model_version": version.pk,
        "accepted": accepted,
        "box_threshold": marked["box_threshold"],
        "above_threshold": marked["above_threshold"],
    }


def prediction_boxes_marked(*, boxes, version: ModelVersion) -> list:
    """A prediction's stored boxes as the API shows them in the prediction: each well-formed one with
    its class's ``box_threshold`` on ``version`` and ``above_threshold``; anything else as stored."""
    return [_with_threshold(found, version) if _well_formed(found) else found for found in boxes or []]


def _with_threshold(found: dict, version: ModelVersion) -> dict:
    threshold = box_threshold_of(version=version, label=found["label"])
    return {**found, "box_threshold": threshold, "above_threshold": found["score"] >= threshold}


def _well_formed(found) -> bool:
    if not isinstance(found, dict) or not isinstance(found.get("label"), str):
        return False
    score = found.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        return False
    try:
        box_from_fractions(found.get("box"))
    except BoxRefused:
        return False
    return True


def _near(a, b, tolerance: float) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def predicted_boxes(*, image: InspectionImage) -> list[dict]:
    """The boxes of the image's prediction by the active version, best first, each saying whether a
    person has accepted it already (a box accepted and later moved or deleted still counts)."""
    prediction = review_selectors.box_prediction_for_image(image=image)
    if prediction is None or not prediction.boxes:
        return []
    accepted = [(a.get("label"), a.get("box")) for a in review_selectors.box_accepted_from_model(
        image=image, model_version_id=prediction.model_version_id) if isinstance(a, dict)]
    shown = []
    for found in prediction.boxes:
        if not _well_formed(found):
            continue
        match = next((i for i, (label, box) in enumerate(accepted)
                      if label == defect_class_name_normalise(found["label"])
                      and isinstance(box, list) and len(box) == 4 and _near(box, found["box"], EDGE_TOLERANCE)), None)
        if match is not None:
            del accepted[match]  # one acceptance answers one of two identical boxes
        shown.append(predicted_box_payload(found, image, prediction.model_version, accepted=match is not None))
    return shown


def _model_box(change: _Change, image: InspectionImage, predictions: dict[int, Prediction | None]) -> Box:
    """The model's own box that an accepting ``add`` names, or a 400 ``not_predicted``."""
    if change.from_model not in predictions:
        predictions[change.from_model] = (Prediction.objects.filter(image=image, model_version_id=change.from_model)
                                          .select_related("model_version").first())
    prediction = predictions[change.from_model]
    if prediction is None:
        raise _invalid(change.index, f"Model version {change.from_model} has no prediction for this image.",
                       code="not_predicted", field="from_model")
    wanted = defect_class_name_normalise(change.label)
    candidates = [found for found in prediction.boxes if _well_formed(found)
                  and defect_class_name_normalise(found["label"]) == wanted
                  and _near(found["box"], change.box.as_list(), MODEL_BOX_TOLERANCE)]
    if not candidates:
        raise _invalid(change.index, f"Model version {change.from_model} found no {change.label} box there; "
                                     "accept its box as it is and change it afterwards.",
                       code="not_predicted", field="from_model")
    threshold = box_threshold_of(version=prediction.model_version, label=candidates[0]["label"])
    candidates = [found for found in candidates if found["score"] >= threshold]
    if not candidates:
        raise _invalid(change.index, f"Model version {change.from_model}'s {change.label} box there scores under the "
                                     f"class's box threshold ({threshold:g}), so it is not offered; draw it "
                                     "yourself if it is right.",
                       code="below_box_threshold", field="from_model", box_threshold=threshold)
    best = min(candidates, key=lambda found: max(abs(x - y) for x, y in zip(found["box"], change.box.as_list())))
    return box_from_fractions(best["box"])


def _state(box: DefectBox) -> dict:
    return {"label": box.label.name, "box": [box.x0, box.y0, box.x1, box.y1]}


def _invalid(index: int, message: str, *, code: str = "invalid_box", field: str = "box", **extra) -> ApplicationError:
    return ApplicationError(f"Change {index}: {message}", code=code,
                            details={"change": index, field: [message], **extra})


@dataclass(frozen=True)
class _Change:
    index: int
    op: str
    box_id: int | None = None
    label: str | None = None
    box: Box | None = None
    from_model: int | None = None


def _parse(changes, *, units: str, image: InspectionImage) -> list[_Change]:
    if units not in UNITS:
        raise ApplicationError(f"units must be one of {', '.join(UNITS)}.", code="invalid",
                               details={"units": [f"not one of {', '.join(UNITS)}"]})
    if not isinstance(changes, list) or not changes:
        raise ApplicationError("Send a non-empty list of changes.", code="invalid",
                               details={"changes": ["a non-empty list is required"]})
    if len(changes) > MAX_CHANGES:
        raise ApplicationError(f"At most {MAX_CHANGES} box changes per request ({len(changes)} sent).",
                               code="too_many_boxes", details={"changes": len(changes), "limit": MAX_CHANGES})
    parsed = []
    for index, change in enumerate(changes):
        if not isinstance(change, dict):
            raise _invalid(index, "A change is an object with an op.", field="op")
        op = change.get("op")
        if op not in OPS:
            raise _invalid(index, f"op must be one of {', '.join(OPS)}.", field="op")
        box_id = label = box = from_model = None
        if op != "add":
            box_id = change.get("id")
            if isinstance(box_id, bool) or not isinstance(box_id, int):
                raise _invalid(index, "id must be the integer id of one of the image's boxes.", field="id")
        if op in ("add", "relabel"):
            label = change.get("label")
            if not isinstance(label, str) or not label.strip():
                raise _invalid(index, "label must be a class name.", field="label")
        if op in ("add", "move"):
            try:
                if units == "pixels":
                    box = box_from_pixels(change.get("box"), width=image.width, height=image.height)
                else:
                    box = box_from_fractions(change.get("box"))
            except BoxRefused as refused:
                raise _invalid(index, str(refused), reason=refused.reason) from None
        if op == "add" and change.get("from_model") is not None:
            from_model = change["from_model"]
            if isinstance(from_model, bool) or not isinstance(from_model, int):
                raise _invalid(index, "from_model must be the id of the model version whose box this is.",
                               field="from_model")
        parsed.append(_Change(index=index, op=op, box_id=box_id, label=label, box=box, from_model=from_model))
    return parsed


def _classes(parsed: list[_Change]) -> dict[str, DefectClass]:
    wanted = {defect_class_name_normalise(c.label) for c in parsed if c.label is not None}
    found = {c.name: c for c in DefectClass.objects.filter(name__in=wanted, active=True)}
    for change in parsed:
        if change.label is not None and defect_class_name_normalise(change.label) not in found:
            known = list(DefectClass.objects.filter(active=True).order_by("name").values_list("name", flat=True))
            raise _invalid(change.index, f"{change.label!r} is not an active defect class.", code="unknown_class",
                           field="label", classes=known)
    return found


def _added(change: _Change, label: DefectClass, model_box: Box | None, *, image, actor,
           present: list[DefectBox]) -> tuple[DefectBox, dict]:
    """The new box of an ``add`` and its history entry; an accepted model box keeps the model's place."""
    if model_box is None:
        box = DefectBox(image=image, label=label, x0=change.box.x0, y0=change.box.y0, x1=change.box.x1,
                        y1=change.box.y1, source=BoxSource.PERSON, created_by=actor)
        return box, {"label": label.name, "box": change.box.as_list()}
    if any(b.source == BoxSource.MODEL and b.model_version_id == change.from_model and b.label_id == label.pk
           and _near([b.x0, b.y0, b.x1, b.y1], model_box.as_list(), EDGE_TOLERANCE) for b in present):
        raise _invalid(change.index, "That model box is on the image already.", code="already_accepted",
                       field="from_model")
    box = DefectBox(image=image, label=label, x0=model_box.x0, y0=model_box.y0, x1=model_box.x1, y1=model_box.y1,
                    source=BoxSource.MODEL, model_version_id=change.from_model, created_by=actor)
    return box, {"label": label.name, "box": model_box.as_list(), "from_model": change.from_model}


def boxes_change(*, image: InspectionImage, changes, expected_version, actor, units: str = "fraction") -> dict:
    """Apply ``changes`` (add, move, relabel, delete) to ``image``'s boxes, all or nothing.

    ``expected_version`` is the ``boxes_version`` the caller saw; another one answers 409
    ``conflict`` with the current version in the details. Returns the new version and the ids of
    the boxes added, in the order of their changes.
    """
    if not roles.can_label(actor):
        raise PermissionDenied("Changing boxes needs the role qa or ml_admin.", code="permission_denied")
    if isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0:
        raise ApplicationError("Send expected_version: the image's boxes_version you saw.",
                               code="expected_version_required", details={"expected_version": ["required"]})
    parsed = _parse(changes, units=units, image=image)
    classes = _classes(parsed)
    predictions: dict[int, Prediction | None] = {}
    model_boxes = {c.index: _model_box(c, image, predictions) for c in parsed if c.from_model is not None}
    now = timezone.now()
    with transaction.atomic():
        locked = InspectionImage.objects.select_for_update(of=("self",)).get(pk=image.pk)
        if locked.boxes_version != expected_version:
            raise Conflict(
                version_conflict_message(subject="The image's boxes", field="boxes_version", expected=expected_version,
                                         current=locked.boxes_version, redo="Reload and change them again."),
                code="conflict",
                details={"image": locked.pk, "boxes_version": locked.boxes_version,
                         "expected_version": expected_version})
        version = locked.boxes_version + 1
        active = {box.pk: box for box in DefectBox.objects.filter(image=locked, deleted_at__isnull=True)
                  .select_related("label").select_for_update(of=("self",))}
        added: list[tuple[DefectBox, dict]] = []
        touched: dict[int, DefectBox] = {}
        history: list[DefectBoxChange] = []
        for change in parsed:
            label = classes[defect_class_name_normalise(change.label)] if change.label is not None else None
            if change.op == "add":
                added.append(_added(change, label, model_boxes.get(change.index), image=locked, actor=actor,
                                    present=[*active.values(), *(box for box, _ in added)]))
                continue
            box = active.get(change.box_id)
            if box is None:
                raise _invalid(change.index, f"The image has no box {change.box_id} (deleted, or another image's).",
                               code="unknown_box", field="id")
            before = _state(box)
            if change.op == "move":
                box.x0, box.y0, box.x1, box.y1 = change.box.as_list()
                action = BoxAction.MOVED
            elif change.op == "relabel":
                box.label = label
                action = BoxAction.RELABELLED
            else:
                box.deleted_at = now
                del active[box.pk]
                action = BoxAction.DELETED
            box.updated_at = now
            touched[box.pk] = box
            history.append(DefectBoxChange(box=box, image=locked, action=action, before=before,
                                           after=None if action == BoxAction.DELETED else _state(box),
                                           changed_by=actor, boxes_version=version))
        if len(active) + len(added) > MAX_BOXES_PER_IMAGE:
            raise ApplicationError(
                f"An image holds at most {MAX_BOXES_PER_IMAGE} boxes; this would make {len(active) + len(added)}.",
                code="too_many_boxes", details={"boxes": len(active) + len(added), "limit": MAX_BOXES_PER_IMAGE})
        if touched:
            DefectBox.objects.bulk_update(list(touched.values()),
                                          ["x0", "y0", "x1", "y1", "label", "deleted_at", "updated_at"])
        new_boxes = DefectBox.objects.bulk_create([box for box, _ in added])
        history.extend(DefectBoxChange(box=box, image=locked, action=BoxAction.DRAWN, before=None, after=after,
                                       changed_by=actor, boxes_version=version)
                       for box, (_, after) in zip(new_boxes, added))
        DefectBoxChange.objects.bulk_create(history)
        locked.boxes_version = version
        locked.save(update_fields=["boxes_version"])
    image.boxes_version = version
    return {"boxes_version": version, "added": [box.pk for box in new_boxes]}
