"""Human decisions on an image, each one an append-only Review row: a label (the image's label
follows it), excluding the image as "not an inspection image", including it again, or taking back
an earlier decision (undo)."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from inspections.access import roles
from inspections.catalog.attention import needs_attention_value
from inspections.catalog.models import DefectClass, InspectionImage, LabelSource, Split
from inspections.catalog.services.classes import defect_class_name_normalise
from inspections.catalog.services.splits import splits_assign_unassigned
from inspections.errors import ApplicationError, Conflict, NotFound, PermissionDenied
from inspections.review.models import Prediction, Review, ReviewDecision

# What a decision may change on the image besides its label (and label_version): an undo restores
# them from the decision's previous_state. Ids and plain values, so they are stored as JSON.
DECIDED_FIELDS = ("label_source", "excluded", "exclusion_reason", "suspect_suggestion_id", "suspect_score",
                  "suspect_cleared_label_id")
from inspections.review.services.version_conflicts import version_conflict_message


def review_submit(*, image: InspectionImage, label_name: str, reviewer, expected_version: int | None = None,
                  bulk_id: UUID | None = None) -> Review:
    """Record ``reviewer``'s decision that ``image`` shows ``label_name``.

    Every decision (a confirmation too) bumps ``image.label_version``. A reviewer who sends back
    the version they saw (``expected_version``) gets a 409 when someone else decided in between,
    with the current state in the error's details, instead of silently overwriting it. Labelling
    an excluded image includes it again: a class is an answer only an inspection image has.
    """
    _check_role(reviewer)
    label = _active_class(label_name)
    with transaction.atomic():
        locked = _locked(image, expected_version)
        review = _record(locked, reviewer, decision=ReviewDecision.LABEL, label=label, bulk_id=bulk_id)
        locked.label = label
        locked.label_source = LabelSource.REVIEW
        locked.excluded, locked.exclusion_reason = False, ""
        _settle_suspicion(locked, label)
        _save_decided(locked, "label", "label_source", "excluded", "exclusion_reason", "suspect_suggestion",
                      "suspect_score", "suspect_cleared_label", "needs_attention")
        if locked.split == Split.UNASSIGNED:
            splits_assign_unassigned()
    image.refresh_from_db(fields=["label", "label_source", "label_version", "split", "excluded", "exclusion_reason",
                                  "suspect_suggestion", "suspect_score", "suspect_cleared_label"])
    return review


def review_exclude(*, image: InspectionImage, reviewer, reason: str, expected_version: int | None = None,
                   bulk_id: UUID | None = None) -> Review:
    """Mark ``image`` as not an inspection image (camera fault, wrong material, test shot): it
    leaves the review queue and every later training or evaluation snapshot; its label and
    history stay. Undone by ``review_include`` or by labelling it."""
    _check_role(reviewer)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the image is excluded.", code="invalid", details={"reason": ["required"]})
    with transaction.atomic():
        locked = _locked(image, expected_version)
        if locked.excluded:
            raise Conflict(f"Image {locked.pk} is already excluded.", code="already_excluded", details=_state(locked))
        review = _record(locked, reviewer, decision=ReviewDecision.EXCLUDE, reason=reason, bulk_id=bulk_id)
        locked.excluded, locked.exclusion_reason = True, reason
        _save_decided(locked, "excluded", "exclusion_reason")
    image.refresh_from_db(fields=["label_version", "excluded", "exclusion_reason"])
    return review


def review_include(*, image: InspectionImage, reviewer, expected_version: int | None = None,
                   bulk_id: UUID | None = None) -> Review:
    """Undo an exclusion: the image is an inspection image again, with the label it had."""
    _check_role(reviewer)
    with transaction.atomic():
        locked = _locked(image, expected_version)
        if not locked.excluded:
            raise Conflict(f"Image {locked.pk} is not excluded.", code="not_excluded",
                                   details=_state(locked))
        review = _record(locked, reviewer, decision=ReviewDecision.INCLUDE, bulk_id=bulk_id)
        locked.excluded, locked.exclusion_reason = False, ""
        _save_decided(locked, "excluded", "exclusion_reason")
    image.refresh_from_db(fields=["label_version", "excluded", "exclusion_reason"])
    return review


def review_undo(*, review: Review, reviewer) -> Review:
    """Take back ``review``: a new decision (reviews are append-only) that returns the image to
    the state ``review`` found it in: its label (which may be none) and where that label came from,
    excluded or not, a suspect label. Refused (409 ``decided_since``) when the image was decided
    again after ``review``; an undo is not undone (``invalid``), and a decision is undone once
    (``already_undone``)."""
    _check_role(reviewer)
    if review.decision == ReviewDecision.UNDO:
        raise Conflict("An undo is not undone; decide the image again instead.", code="invalid")
    if Review.objects.filter(undoes=review).exists():
        raise Conflict(f"Review {review.pk} of image {review.image_id} was undone already.", code="already_undone")
    before = review.previous_state or {}
    if "label_version" not in before:
        raise Conflict(f"Review {review.pk} was made before decisions could be undone.", code="not_undoable")
    with transaction.atomic():
        locked = _locked(review.image, None)
        if locked.label_version != before["label_version"] + 1:  # every decision, an undo too, bumps it
            raise Conflict(f"Image {locked.pk} was decided again after this decision; it is left as it is.",
                           code="decided_since", details=_state(locked))
        undo = _record(locked, reviewer, decision=ReviewDecision.UNDO, label=review.previous_label, undoes=review)
        locked.label = review.previous_label
        for field in DECIDED_FIELDS:
            setattr(locked, field, before[field])
        locked.needs_attention = needs_attention_value(suspect=locked.suspect_suggestion_id is not None,
                                                       latest_needs_review=locked.latest_needs_review)
        _save_decided(locked, "label", *DECIDED_FIELDS, "needs_attention")
    image = review.image
    image.refresh_from_db(fields=["label", "label_version", *DECIDED_FIELDS, "needs_attention"])
    return undo


def review_may_undo(*, review: Review, user) -> bool:
    """Whether ``user`` may take ``review`` back: its author, or an ML admin (both able to label)."""
    return roles.can_label(user) and (review.reviewer_id == user.pk or roles.can_manage_models(user))


def review_undo_by_id(*, review_id: int, reviewer) -> Review:
    """Take back review ``review_id`` on behalf of ``reviewer`` (the API's and the review view's
    undo): the person who made it, or an ML admin, may; the rest is ``review_undo``'s rule."""
    _check_role(reviewer)
    review = Review.objects.select_related("image", "previous_label").filter(pk=review_id).first()
    if review is None:
        raise NotFound(f"No review {review_id}.", code="not_found")
    if not review_may_undo(review=review, user=reviewer):
        raise PermissionDenied("Only the person who made a decision, or an ML admin, can undo it.",
                               code="permission_denied")
    return review_undo(review=review, reviewer=reviewer)


def _decided_state(image: InspectionImage) -> dict:
    """The image's DECIDED_FIELDS and label_version, as a decision finds them (JSON values)."""
    return {"label_version": image.label_version, **{field: getattr(image, field) for field in DECIDED_FIELDS}}


def _settle_suspicion(locked: InspectionImage, label: DefectClass) -> None:
    """A decision on a suspect label settles it: the label decided is not flagged again until the
    image's label changes (a later decision for another label forgets it)."""
    if locked.suspect_suggestion_id is not None:
        locked.suspect_cleared_label = label
    elif locked.suspect_cleared_label_id != label.pk:
        locked.suspect_cleared_label = None
    locked.suspect_suggestion, locked.suspect_score = None, None
    locked.needs_attention = needs_attention_value(suspect=False, latest_needs_review=locked.latest_needs_review)


def _check_role(reviewer) -> None:
    if not roles.can_label(reviewer):
        raise PermissionDenied("Reviewing needs the role qa or ml_admin.", code="permission_denied")


def _state(image: InspectionImage) -> dict:
    return {
        "image": image.pk,
        "label": image.label.name if image.label else None,
        "label_source": image.label_source,
        "label_version": image.label_version,
        "excluded": image.excluded,
    }


def _locked(image: InspectionImage, expected_version: int | None) -> InspectionImage:
    locked = InspectionImage.objects.select_for_update(of=("self",)).select_related("label").get(pk=image.pk)
    if expected_version is not None and expected_version != locked.label_version:
        raise Conflict(
            version_conflict_message(subject="The image's label", field="label_version", expected=expected_version,
                                     current=locked.label_version, redo="Reload and decide again."),
            code="conflict",
            details={**_state(locked), "expected_version": expected_version},
        )
    return locked


def _record(locked: InspectionImage, reviewer, *, decision: str, label: DefectClass | None = None,
            reason: str = "", bulk_id: UUID | None = None, undoes: Review | None = None) -> Review:
    return Review.objects.create(
        image=locked,
        decision=decision,
        label=label,
        reason=reason,
        previous_label=locked.label,
        previous_state=_decided_state(locked),
        bulk_id=bulk_id,
        undoes=undoes,
        reviewer=reviewer,
        prediction=Prediction.objects.filter(image=locked).order_by("-created_at", "-id").first(),
    )


def _save_decided(locked: InspectionImage, *fields: str) -> None:
    locked.label_version += 1
    locked.save(update_fields=[*fields, "label_version"])


def _active_class(name: str) -> DefectClass:
    normalised = defect_class_name_normalise(name or "")
    defect_class = DefectClass.objects.filter(name=normalised).first()
    if defect_class is None or not defect_class.active:
        known = list(DefectClass.objects.filter(active=True).order_by("name").values_list("name", flat=True))
        state = "inactive" if defect_class else "unknown"
        raise ApplicationError(
            f"{name!r} is not an active defect class.",
            code="unknown_class",
            details={"label": [f"{state} class"], "classes": known},
        )
    return defect_class
