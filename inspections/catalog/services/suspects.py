"""Suspect labels: after a training run whose version the gate promoted, the labelled images
whose label the run's out-of-fold check strongly disputes (``issue`` in the artefact's
``suspects.json``, mlcore's confident learning) go to the review queue with reason
``suspect_label``, the check's suggestion, and which run said so and when. A person's decision on
the image clears it, and that label is not flagged again until it changes.

The check is not the model in service: each image is scored by a small classifier trained on the
other folds of the run's images, so it may dispute a label the model in service agrees with. A
run whose version the gate refused sends nothing (``registry.services.training``): its evidence
was judged not good enough to serve, so it does not get to send people work either."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from inspections.catalog.attention import NEEDS_ATTENTION_WHEN_NOT_SUSPECT, needs_attention_value
from inspections.catalog.models import DefectClass, InspectionImage
from mlcore.artefact import SUSPECTS_FILE

logger = logging.getLogger(__name__)


def suspects_read(*, model_dir: Path, image_ids_by_path: dict[str, int]) -> list[dict]:
    """The flagged entries of ``model_dir``'s suspects file, each with its ``image_id`` (entries
    whose path is not one of the run's samples are left out). Empty when the file is absent."""
    path = Path(model_dir) / SUSPECTS_FILE
    if not path.is_file():
        return []
    flagged = []
    for entry in json.loads(path.read_text()):
        image_id = image_ids_by_path.get(str(entry.get("path")))
        if entry.get("issue") and image_id is not None:
            flagged.append({**entry, "image_id": image_id})
    return flagged


@transaction.atomic
def suspect_labels_flag(*, image_ids: list[int], flagged: list[dict], run_id: int | None = None) -> int:
    """Replace the suspicions of the images a run trained on (``image_ids``) by its verdict;
    ``run_id`` is that run, recorded with the time on each image it flags.

    An entry flags its image only when the image still has the label the run saw, is not
    excluded, and a person has not already decided that label while it was suspect. Returns how
    many images were flagged.
    """
    InspectionImage.objects.filter(id__in=image_ids, suspect_suggestion__isnull=False).update(
        suspect_suggestion=None, suspect_score=None, suspect_run=None, suspect_flagged_at=None,
        needs_attention=NEEDS_ATTENTION_WHEN_NOT_SUSPECT)
    # A suspicion a person settled keeps its run until now; it means nothing without the suggestion.
    InspectionImage.objects.filter(id__in=image_ids, suspect_suggestion__isnull=True, suspect_run__isnull=False).update(
        suspect_run=None, suspect_flagged_at=None)
    now = timezone.now()
    classes = {c.name: c.pk for c in DefectClass.objects.filter(name__in={e["suggested_label"] for e in flagged})}
    count = 0
    for entry in flagged:
        suggestion = classes.get(entry["suggested_label"])
        if suggestion is None:
            continue
        count += (
            InspectionImage.objects.filter(pk=entry["image_id"], label__name=entry["label"], excluded=False)
            .exclude(Q(suspect_cleared_label__isnull=False) & Q(suspect_cleared_label=F("label")))
            .update(suspect_suggestion_id=suggestion, suspect_score=float(entry["score"]),
                    suspect_run_id=run_id, suspect_flagged_at=now,
                    needs_attention=needs_attention_value(suspect=True, latest_needs_review=None))
        )
    logger.info("suspect labels: %d of %d flagged images sent to review", count, len(flagged))
    return count
