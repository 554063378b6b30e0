import random
from collections import Counter

import pytest

from mlcore.splits import assign_splits


def _items(per_class: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{label}-{i}", label) for label, n in per_class.items() for i in range(n)]


def test_each_class_is_split_70_15_15():
    assigned = assign_splits(_items({"a": 240, "b": 20}))
    counts = Counter((key.split("-")[0], split) for key, split in assigned.items())
    assert (counts["a", "train"], counts["a", "val"], counts["a", "test"]) == (168, 36, 36)
    assert (counts["b", "train"], counts["b", "val"], counts["b", "test"]) == (14, 3, 3)


def test_assignment_does_not_depend_on_input_order():
    items = _items({"a": 50, "b": 30})
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    assert assign_splits(items, seed=5) == assign_splits(shuffled, seed=5)


def test_seed_changes_which_items_go_where_but_not_the_quotas():
    items = _items({"a": 100})
    one, two = assign_splits(items, seed=1), assign_splits(items, seed=2)
    assert one != two
    assert Counter(one.values()) == Counter(two.values())


def test_same_key_twice_gets_one_split():
    assigned = assign_splits([("same", "a"), ("same", "a"), ("other", "a")])
    assert set(assigned) == {"same", "other"}


def test_new_items_fill_the_quota_without_moving_existing_ones():
    first = assign_splits(_items({"a": 100}))
    existing = {"a": Counter(first.values())}
    more = assign_splits([(f"new-{i}", "a") for i in range(20)], existing=existing)
    assert set(more).isdisjoint(first)
    total = Counter(first.values()) + Counter(more.values())
    assert (total["train"], total["val"], total["test"]) == (84, 18, 18)


def test_fractions_must_cover_the_three_splits_and_add_to_one():
    with pytest.raises(ValueError):
        assign_splits([("k", "a")], fractions={"train": 0.5, "val": 0.5})
    with pytest.raises(ValueError):
        assign_splits([("k", "a")], fractions={"train": 0.5, "val": 0.3, "test": 0.3})
