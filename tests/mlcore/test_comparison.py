"""mlcore.comparison: two versions' predictions on the same images, side by side."""

import pytest

from mlcore.comparison import compare, disagreements, union_classes


def test_per_class_metrics_deltas_matrices_and_disagreements():
    labels = ["a", "a", "b", "b"]
    first = ["a", "b", "b", "b"]   # one a called b
    second = ["a", "a", "b", "a"]  # one b called a
    result = compare(labels=labels, first_predictions=first, first_classes=["a", "b"],
                     second_predictions=second, second_classes=["a", "b"])
    assert result["classes"] == ["a", "b"] and result["images"] == 4
    assert result["accuracy"] == {"first": 0.75, "second": 0.75, "delta": 0.0}
    a = result["per_class"]["a"]
    assert a["known_by"] == "both" and a["support"] == 2
    assert a["first"]["recall"] == 0.5 and a["second"]["recall"] == 1.0
    assert a["delta"]["recall"] == pytest.approx(0.5)
    assert a["first"]["precision"] == 1.0 and a["second"]["precision"] == pytest.approx(2 / 3)
    assert a["delta"]["precision"] == pytest.approx(-1 / 3)
    assert result["confusion_matrices"]["first"] == [[1, 1], [0, 2]]
    assert result["confusion_matrices"]["second"] == [[2, 0], [1, 1]]
    assert result["confusion_matrices"]["difference"] == [[1, -1], [1, -1]]
    assert result["disagreements"] == [1, 3]


def test_a_class_only_one_version_knows_has_no_metrics_for_the_other():
    labels = ["a", "b", "c", "d"]
    result = compare(labels=labels, first_predictions=["a", "b", "b", "a"], first_classes=["a", "b"],
                     second_predictions=["a", "b", "c", "a"], second_classes=["a", "b", "c"])
    assert result["classes"] == ["a", "b", "c", "d"]
    c = result["per_class"]["c"]
    assert c["known_by"] == "second" and c["first"] is None and c["delta"] is None
    assert c["second"]["recall"] == 1.0
    assert result["per_class"]["d"]["known_by"] == "neither" and result["per_class"]["d"]["support"] == 1
    assert result["confusion_matrices"]["difference"][2] == [0, -1, 1, 0]
    assert result["disagreements"] == [2]


def test_union_keeps_the_first_versions_order_then_new_names():
    assert union_classes(["b", "a"], ["a", "c"], ["z", "a"]) == ["b", "a", "c", "z"]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same length"):
        compare(labels=["a"], first_predictions=["a", "a"], first_classes=["a"],
                second_predictions=["a"], second_classes=["a"])
    with pytest.raises(ValueError, match="neither version knows"):
        compare(labels=["a"], first_predictions=["x"], first_classes=["a"],
                second_predictions=["a"], second_classes=["a"])
    with pytest.raises(ValueError):
        disagreements(["a"], [])


def test_no_images_gives_zero_metrics_and_no_disagreements():
    result = compare(labels=[], first_predictions=[], first_classes=["a"], second_predictions=[], second_classes=["a"])
    assert result["images"] == 0 and result["disagreements"] == []
    assert result["accuracy"]["delta"] == 0.0
