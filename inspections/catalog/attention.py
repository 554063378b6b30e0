"""The image's ``needs_attention`` flag, the review queue's first key: one rule, used by the
services that write an image's latest prediction (review) and its suspect label (catalog)."""

from __future__ import annotations

from django.db.models import F

# What needs_attention becomes when an image's label stops being suspect: the latest prediction's flag.
NEEDS_ATTENTION_WHEN_NOT_SUSPECT = F("latest_needs_review")


def needs_attention_value(*, suspect: bool, latest_needs_review: bool | None) -> bool | None:
    """The queue's first key: a suspect label always waits; else the latest prediction decides
    (None without a prediction: after every predicted image)."""
    return True if suspect else latest_needs_review
