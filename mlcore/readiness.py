"""Class readiness: has a defect class enough labelled images to be trained, or is it still collecting?

A class is *active* (trained into the next model) once it has at least ``min_train_images``
training images and ``min_test_images`` test images: fewer training images teach the model
little, and fewer test images leave its recall unmeasured, so the promotion gate could not
judge it (see ``mlcore.gate``). Otherwise it is *collecting*.

``images_needed`` is how many more labelled images of the class are needed before both minimums
hold, counting where the split will put them. A new image does not choose its split: the
platform's split (``mlcore.splits.assign_splits``) sends each new image of a class to the split
furthest below its target share for that class. So this module asks that same rule, one image
at a time starting from the class's current train/val/test counts, how many images it takes
until training and test both reach their minimums. With the default 70/15/15 split a class
with no images needs 32 (its 20th training image comes with the 28th image, its 5th test image
with the 32nd); a class with 25 training images and none in test needs 10, since every new image
then goes to validation or test in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from mlcore.splits import DEFAULT_FRACTIONS, assign_splits

ACTIVE = "active"
COLLECTING = "collecting"


@dataclass(frozen=True)
class ReadinessRule:
    min_train_images: int = 20
    min_test_images: int = 5
    fractions: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))

    def __post_init__(self) -> None:
        if self.min_train_images < 0 or self.min_test_images < 0:
            raise ValueError("the minimum image counts must not be negative")
        for split, minimum in (("train", self.min_train_images), ("test", self.min_test_images)):
            if minimum and not self.fractions.get(split):
                raise ValueError(f"the split sends no images to {split}, so {split} can never reach {minimum}")


@dataclass(frozen=True)
class ClassImages:
    """Labelled images of one class already given a split."""

    train: int
    test: int
    val: int = 0


@dataclass
class ClassReadiness:
    name: str
    status: str            # ACTIVE or COLLECTING
    train_images: int
    test_images: int
    images_needed: int     # more labelled images until both minimums hold; 0 when active
    sentence: str

    def to_dict(self) -> dict:
        return asdict(self)


def images_needed(counts: ClassImages, rule: ReadinessRule) -> int:
    """More labelled images of a class until train and test reach their minimums under the split rule."""
    have = {"train": counts.train, "val": counts.val, "test": counts.test}
    needed = 0
    while have["train"] < rule.min_train_images or have["test"] < rule.min_test_images:
        # One image at a time: the rule decides each image's split from the counts so far.
        split = assign_splits([("next", "class")], existing={"class": have}, fractions=rule.fractions)["next"]
        have[split] += 1
        needed += 1
    return needed


def _sentence(name: str, counts: ClassImages, needed: int, rule: ReadinessRule) -> str:
    have = f"{counts.train} training and {counts.test} test images"
    if not needed:
        return f"{name}: ready to train ({have})"
    return (f"{name}: collecting ({have}; needs at least {rule.min_train_images} training and "
            f"{rule.min_test_images} test): {needed} more labelled "
            f"{'image' if needed == 1 else 'images'}, as the split shares them out")


def class_readiness(
    *, counts: Mapping[str, ClassImages], rule: ReadinessRule = ReadinessRule(),
) -> dict[str, ClassReadiness]:
    """Per class (in the order given): active or collecting, how many more images, and why."""
    result = {}
    for name, class_counts in counts.items():
        if min(class_counts.train, class_counts.test, class_counts.val) < 0:
            raise ValueError(f"{name}: image counts must not be negative")
        needed = images_needed(class_counts, rule)
        result[name] = ClassReadiness(
            name=name, status=COLLECTING if needed else ACTIVE, train_images=class_counts.train,
            test_images=class_counts.test, images_needed=needed, sentence=_sentence(name, class_counts, needed, rule),
        )
    return result
