"""Giving labelled images their train/val/test split, once, by the rule in mlcore.splits."""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from inspections.catalog.models import DefectClass, InspectionImage, Split
from mlcore.splits import assign_splits


@transaction.atomic
def splits_assign_unassigned() -> dict[str, int]:
    """Assign every labelled image that has no split yet; returns how many went where.

    The classes' rows are locked so two imports cannot both count the same quota.
    """
    pending = list(
        InspectionImage.objects.filter(split=Split.UNASSIGNED, label__isnull=False).values_list("id", "sha256", "label__name")
    )
    if not pending:
        return {}
    label_names = sorted({label for _, _, label in pending})
    list(DefectClass.objects.select_for_update().filter(name__in=label_names).order_by("id"))

    existing: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (
        InspectionImage.objects.filter(label__name__in=label_names)
        .exclude(split=Split.UNASSIGNED)
        .values("label__name", "split")
        .annotate(n=Count("id"))
    )
    for row in rows:
        existing[row["label__name"]][row["split"]] = row["n"]

    assigned = assign_splits(
        [(sha, label) for _, sha, label in pending],
        existing=existing,
        fractions=settings.STEELQC_SPLIT_FRACTIONS,
        seed=settings.STEELQC_SPLIT_SEED,
    )
    by_split: dict[str, list[int]] = defaultdict(list)
    for image_id, sha, _ in pending:
        by_split[assigned[sha]].append(image_id)
    for split, ids in by_split.items():
        InspectionImage.objects.filter(id__in=ids, split=Split.UNASSIGNED).update(split=split)
    return {split: len(ids) for split, ids in by_split.items()}
