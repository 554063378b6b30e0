"""Human label decisions: each one an append-only Review row; the image's label follows it."""

from __future__ import annotations

from django.db import transaction

from inspections import roles
from inspections.errors import ApplicationError
from inspections.models import DefectClass, InspectionImage, LabelSource, Prediction, Review, Split
from inspections.services.classes import defect_class_name_normalise
from inspections.services.splits import splits_assign_unassigned


def review_submit(*, image: InspectionImage, label_name: str, reviewer, expected_version: int | None = None) -> Review:
    """Record ``reviewer``'s decision that ``image`` shows ``label_name``.

    Every decision (a confirmation too) bumps ``image.label_version``. A reviewer who sends back
    the version they saw (``expected_version``) gets a 409 when someone else decided in between,
    with the current state in the error's details, instead of silently overwriting it.
    """
    if not roles.can_label(reviewer):
        raise ApplicationError("Reviewing needs the role qa or ml_admin.", code="permission_denied", status_code=403)
    label = _active_class(label_name)
    with transaction.atomic():
        locked = InspectionImage.objects.select_for_update(of=("self",)).select_related("label").get(pk=image.pk)
        if expected_version is not None and expected_version != locked.label_version:
            raise ApplicationError(
                f"The image's label changed since version {expected_version}; it is now at version "
                f"{locked.label_version}. Reload and decide again.",
                code="conflict",
                status_code=409,
                details={
                    "image": locked.pk,
                    "label": locked.label.name if locked.label else None,
                    "label_source": locked.label_source,
                    "label_version": locked.label_version,
                    "expected_version": expected_version,
                },
            )
        review = Review.objects.create(
            image=locked,
            label=label,
            previous_label=locked.label,
            reviewer=reviewer,
            prediction=Prediction.objects.filter(image=locked).order_by("-created_at", "-id").first(),
        )
        locked.label = label
        locked.label_source = LabelSource.REVIEW
        locked.label_version += 1
        locked.save(update_fields=["label", "label_source", "label_version"])
        if locked.split == Split.UNASSIGNED:
            splits_assign_unassigned()
    image.refresh_from_db(fields=["label", "label_source", "label_version", "split"])
    return review


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
