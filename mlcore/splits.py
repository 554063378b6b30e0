"""Train/val/test split assignment: stratified, deterministic, assigned once.

The rule is incremental so that a split never moves once given: each new item of a class
goes to the split furthest below its target share *for that class*, counting what that
class already has. New items are visited in an order fixed by a seeded hash of their key
(the image's sha256), so the outcome does not depend on file names or upload order, and
byte-identical files (same key) always land on the same side.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.70, "val": 0.15, "test": 0.15}


def split_order_key(key: str, *, seed: int) -> str:
    """The seeded position of an item in the assignment order."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if set(fractions) != set(SPLITS):
        raise ValueError(f"fractions must name exactly {SPLITS}, got {sorted(fractions)}")
    if any(value < 0 for value in fractions.values()):
        raise ValueError("fractions must not be negative")
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"fractions must add up to 1, got {sum(fractions.values())}")


def _most_underfilled(counts: Counter, fractions: Mapping[str, float]) -> str:
    total = sum(counts[name] for name in SPLITS) + 1
    # Largest deficit wins; ties go to the earlier split in SPLITS, which keeps it stable.
    return max(SPLITS, key=lambda name: (fractions[name] * total - counts[name], -SPLITS.index(name)))


def assign_splits(
    items: Iterable[tuple[str, str]],
    *,
    existing: Mapping[str, Mapping[str, int]] | None = None,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> dict[str, str]:
    """Give each new ``(key, label)`` item a split.

    ``existing`` holds, per label, how many already-assigned items each split has; they are
    never moved, only counted. Returns ``{key: split}`` for the new items. An item whose key
    appears twice gets one split.
    """
    _check_fractions(fractions)
    counts = {label: Counter(per_split) for label, per_split in (existing or {}).items()}
    unique: dict[str, str] = {}
    for key, label in items:
        unique.setdefault(key, label)

    assigned: dict[str, str] = {}
    for key in sorted(unique, key=lambda k: (unique[k], split_order_key(k, seed=seed))):
        label_counts = counts.setdefault(unique[key], Counter())
        split = _most_underfilled(label_counts, fractions)
        label_counts[split] += 1
        assigned[key] = split
    return assigned
