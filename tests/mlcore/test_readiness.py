import pytest

from mlcore.readiness import ACTIVE, COLLECTING, ClassImages, ReadinessRule, class_readiness, images_needed
from mlcore.splits import assign_splits


def test_a_class_with_both_minimums_is_active_and_needs_nothing():
    ready = class_readiness(counts={"crazing": ClassImages(train=20, test=5)})["crazing"]
    assert (ready.status, ready.images_needed) == (ACTIVE, 0)
    assert ready.sentence == "crazing: ready to train (20 training and 5 test images)"


def test_one_training_image_short_needs_one_image_because_the_split_sends_it_to_train():
    # 29 images after it: train's target 0.7 * 29 = 20.3 is furthest from its 19.
    result = class_readiness(counts={"pitted": ClassImages(train=19, val=4, test=5)})["pitted"]
    assert (result.status, result.images_needed) == (COLLECTING, 1)


def test_a_class_without_test_images_needs_twice_its_test_shortfall_as_val_and_test_take_turns():
    assert images_needed(ClassImages(train=25, test=0), ReadinessRule()) == 10


def test_the_count_is_the_fewest_images_after_which_the_split_meets_both_minimums():
    counts = ClassImages(train=12, val=2, test=2)
    needed = images_needed(counts, ReadinessRule())
    existing = {"oil_stain": {"train": 12, "val": 2, "test": 2}}
    for n, enough in ((needed, True), (needed - 1, False)):
        splits = list(assign_splits([(str(i), "oil_stain") for i in range(n)], existing=existing).values())
        met = 12 + splits.count("train") >= 20 and 2 + splits.count("test") >= 5
        assert met is enough


def test_a_collecting_class_says_what_it_has_and_needs():
    result = class_readiness(counts={"oil_stain": ClassImages(train=12, val=2, test=2)},
                             rule=ReadinessRule(min_train_images=20, min_test_images=5))["oil_stain"]
    assert result.status == COLLECTING and result.images_needed > 0
    assert result.sentence == ("oil_stain: collecting (12 training and 2 test images; needs at least 20 training "
                               f"and 5 test): {result.images_needed} more labelled images, as the split shares them out")


def test_the_minimums_are_settings():
    counts = {"crazing": ClassImages(train=20, test=5)}
    assert class_readiness(counts=counts, rule=ReadinessRule(min_train_images=21))["crazing"].status == COLLECTING
    assert class_readiness(counts=counts, rule=ReadinessRule(min_test_images=6))["crazing"].status == COLLECTING


def test_every_class_is_answered_in_the_order_given():
    result = class_readiness(counts={"b": ClassImages(0, 0), "a": ClassImages(30, 8, 8)})
    assert list(result) == ["b", "a"]
    assert result["b"].to_dict()["status"] == COLLECTING and result["a"].to_dict()["status"] == ACTIVE


def test_a_split_that_never_fills_test_is_refused():
    with pytest.raises(ValueError, match="test"):
        ReadinessRule(fractions={"train": 0.8, "val": 0.2, "test": 0.0})
