"""The anomaly threshold: a decision from held-out good images, with its reasons. Pure Python.

The threshold is set so that a new good image is flagged with probability at most the stated
false-alarm rate. With ``n`` held-out good images scored by a memory that never saw them, the
``k``-th smallest score, ``k = ceil((n + 1) (1 - rate))``, does exactly that for any image drawn
like them (the conformal quantile: the new image's score is equally likely to fall in each of the
``n + 1`` gaps between the held-out scores). It needs ``k <= n``, that is at least
``ceil((1 - rate) / rate)`` held-out images: 99 for 1 %, 19 for 5 %. With fewer there is no
honest threshold for that rate, and training says so instead of guessing.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

DEFAULT_FALSE_ALARM_RATE = 0.01
MIN_TRAIN_IMAGES = 10          # good images the memory learns from, at the least
CALIBRATION_SHARE = 0.2        # of the good images held out to set the threshold ...
MAX_CALIBRATION_IMAGES = 1000  # ... but no more than this (scoring them costs training time)


class GoodSetTooSmall(ValueError):
    """Too few distinct good images to learn from and to calibrate the stated false-alarm rate."""


def min_calibration_images(false_alarm_rate: float) -> int:
    """Held-out good images needed for a conformal threshold at ``false_alarm_rate``."""
    check_false_alarm_rate(false_alarm_rate)
    # The small epsilon keeps 0.01 from becoming 99.00000000000001 -> 100.
    return math.ceil((1.0 - false_alarm_rate) / false_alarm_rate - 1e-9)


def min_good_images(false_alarm_rate: float) -> int:
    return min_calibration_images(false_alarm_rate) + MIN_TRAIN_IMAGES


def check_false_alarm_rate(false_alarm_rate: float) -> None:
    if not 0.0 < false_alarm_rate < 0.5:
        raise ValueError(f"the false-alarm rate must be above 0 and below 0.5, got {false_alarm_rate}")


@dataclass(frozen=True)
class GoodSplit:
    train: list[int]        # indices into the distinct good images, memory
    calibration: list[int]  # held out, threshold


def split_good_images(keys: Sequence[str], *, false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
                      calibration_share: float = CALIBRATION_SHARE,
                      max_calibration: int = MAX_CALIBRATION_IMAGES, seed: int = 0) -> GoodSplit:
    """Hold out calibration images among distinct good images (``keys``: their content hashes).

    The held-out images are the first in an order fixed by a seeded hash of each key, so the
    split does not depend on file names or the order images were given in.
    """
    needed = min_calibration_images(false_alarm_rate)
    total = len(keys)
    if total < needed + MIN_TRAIN_IMAGES:
        raise GoodSetTooSmall(
            f"{total} distinct good image{'s' if total != 1 else ''} are too few: a false-alarm rate of "
            f"{false_alarm_rate:.4g} needs at least {needed + MIN_TRAIN_IMAGES} ({needed} held out to set the "
            f"threshold, {MIN_TRAIN_IMAGES} to learn from); add good images or allow a higher false-alarm rate "
            f"(5% needs {min_good_images(0.05)}, 10% needs {min_good_images(0.1)})")
    count = max(needed, min(int(round(calibration_share * total)), max_calibration))
    count = min(count, total - MIN_TRAIN_IMAGES)
    order = sorted(range(total), key=lambda i: hashlib.sha256(f"{seed}:{keys[i]}".encode()).hexdigest())
    return GoodSplit(train=sorted(order[count:]), calibration=sorted(order[:count]))


@dataclass(frozen=True)
class Calibration:
    threshold: float              # image scores above this are anomalous
    false_alarm_rate: float       # the stated target
    images: int                   # held-out good images scored
    rank: int                     # the threshold is the rank-th smallest of their scores
    held_out_false_alarms: int    # held-out good images above the threshold (n - rank, ties aside)
    sentences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate_threshold(scores: Sequence[float], *, false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE) -> Calibration:
    """The conformal threshold of held-out good images' scores at ``false_alarm_rate``."""
    values = sorted(float(s) for s in scores)
    needed = min_calibration_images(false_alarm_rate)
    if len(values) < needed:
        raise GoodSetTooSmall(f"{len(values)} held-out good images scored; a false-alarm rate of "
                              f"{false_alarm_rate:.4g} needs at least {needed}")
    count = len(values)
    rank = min(count, math.ceil((count + 1) * (1.0 - false_alarm_rate) - 1e-9))
    threshold = values[rank - 1]
    above = sum(value > threshold for value in values)
    sentences = [
        f"Threshold {threshold:.4g}: the {rank}th smallest score of {count} held-out good images, so a new good "
        f"image scores above it with probability at most {false_alarm_rate:.2%}.",
        f"{above} of the {count} held-out good images ({above / count:.1%}) score above it.",
    ]
    return Calibration(threshold=threshold, false_alarm_rate=float(false_alarm_rate), images=count, rank=rank,
                       held_out_false_alarms=above, sentences=sentences)
