"""Reads of the catalog domain."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, QuerySet

from inspections.catalog.models import DefectBox, DefectBoxChange, DefectClass, InspectionImage, Split
from mlcore.readiness import ClassImages, ClassReadiness, ReadinessRule, class_readiness


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


# --- Class readiness: which classes a training run includes ------------------------------------

def class_readiness_rule() -> ReadinessRule:
    """The installation's rule: STEELQC_CLASS_MIN_TRAIN_IMAGES / _TEST_IMAGES and the split the
    platform really uses, so ``images_needed`` counts where new images will go."""
    return ReadinessRule(min_train_images=settings.STEELQC_CLASS_MIN_TRAIN_IMAGES,
                         min_test_images=settings.STEELQC_CLASS_MIN_TEST_IMAGES,
                         fractions=settings.STEELQC_SPLIT_FRACTIONS)


def class_image_counts(*, class_names: Iterable[str]) -> dict[str, ClassImages]:
    """Class name -> its labelled, not excluded images per split (the images a training run would
    use); one query. Images still waiting for their split are not counted."""
    names = list(class_names)
    per_class: dict[str, dict[str, int]] = {name: {} for name in names}
    rows = (InspectionImage.objects.filter(label__name__in=names, excluded=False)
            .exclude(split=Split.UNASSIGNED).values_list("label__name", "split").annotate(n=Count("id")))
    for name, split, n in rows:
        per_class[name][split] = n
    return {name: ClassImages(train=splits.get(Split.TRAIN, 0), val=splits.get(Split.VAL, 0),
                              test=splits.get(Split.TEST, 0)) for name, splits in per_class.items()}


def class_readiness_list(*, classes: Iterable[DefectClass] | None = None) -> dict[str, ClassReadiness]:
    """Class name -> active (trained by the next run) or collecting, with how many more labelled
    images it needs; for ``classes`` (default: every active class), in their order."""
    names = [c.name for c in (defect_class_list().filter(active=True) if classes is None else classes)]
    return class_readiness(counts=class_image_counts(class_names=names), rule=class_readiness_rule())


def defect_classes_with_readiness(*, classes: Iterable[DefectClass]) -> list[DefectClass]:
    """The classes, each carrying ``readiness`` (its ClassReadiness): for the class list and pages."""
    classes = list(classes)
    readiness = class_readiness_list(classes=classes)
    for defect_class in classes:
        defect_class.readiness = readiness[defect_class.name]
    return classes


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
