"""Reads of the catalog domain."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from inspections.catalog.models import DefectBox, DefectBoxChange, DefectClass, InspectionImage


def dataset_summary() -> dict:
    """Images per label and split, and per status."""
    per_label: dict[str, dict[str, int]] = {}
    for row in InspectionImage.objects.values("label__name", "split").annotate(n=Count("id")).order_by("label__name"):
        per_label.setdefault(row["label__name"] or "(unlabelled)", {})[row["split"]] = row["n"]
    per_status = dict(InspectionImage.objects.values_list("status").annotate(n=Count("id")))
    return {"per_label": per_label, "per_status": per_status, "total": sum(per_status.values())}


def box_list_for_image(*, image: InspectionImage) -> QuerySet[DefectBox]:
    """The image's current (not deleted) defect boxes, oldest first: ids are stable."""
    return DefectBox.objects.filter(image=image, deleted_at__isnull=True).select_related("label", "created_by")


def box_history_for_image(*, image: InspectionImage) -> QuerySet[DefectBoxChange]:
    """Every person's change of the image's boxes, newest first."""
    return DefectBoxChange.objects.filter(image=image).select_related("changed_by").order_by("-changed_at", "-id")


# --- Classes, model versions, training runs ---------------------------------------------------

def defect_class_list() -> QuerySet[DefectClass]:
    return DefectClass.objects.order_by("name")


# --- Defect boxes of many images at once (training, the promotion gate) ----------------------

def box_tuples_for_images(*, image_ids: list[int]) -> dict[int, tuple]:
    """Image id -> its current defect boxes as (label, x0, y0, x1, y1) fractions, oldest first,
    for the images that have any; one query however many images."""
    boxes: dict[int, list] = {}
    rows = (DefectBox.objects.filter(image_id__in=image_ids, deleted_at__isnull=True)
            .values_list("image_id", "label__name", "x0", "y0", "x1", "y1").order_by("image_id", "id"))
    for image_id, *box in rows:
        boxes.setdefault(image_id, []).append(tuple(box))
    return {image_id: tuple(found) for image_id, found in boxes.items()}


def retired_class_names() -> list[str]:
    """Classes people retired (inactive): a new model version may leave them out."""
    return list(DefectClass.objects.filter(active=False).values_list("name", flat=True))
