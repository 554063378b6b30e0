import json
import math

import pytest

from mlcore.gate import GateRule, binomial_upper_tail, decide, holm_adjust, mcnemar_worse_p, score

CLASSES = ["crazing", "patches", "scratches", "inclusion"]
LABELS = ["crazing"] * 4 + ["patches"] * 4 + ["scratches"] * 4


def _wrong(label: str) -> str:
    return next(name for name in CLASSES if name != label)


def _predictions(labels, wrong_at) -> list[str]:
    """Right on every image except those at ``wrong_at``."""
    return [_wrong(label) if i in set(wrong_at) else label for i, label in enumerate(labels)]


def _decide(labels, *, candidate_wrong=(), champion_wrong=(), classes=CLASSES, rule=GateRule(), **extra):
    return decide(labels=labels, candidate_predictions=_predictions(labels, candidate_wrong), candidate_classes=classes,
                  champion_predictions=_predictions(labels, champion_wrong), champion_classes=classes, rule=rule, **extra)


def _checks(decision, kind, name=None):
    return [check for check in decision.checks if check["check"] == kind and check["class"] == name]


# --- the exact paired test, against hand-computed values ---

def test_no_disagreement_is_no_evidence():
    assert mcnemar_worse_p(0, 0) == 1.0
    assert mcnemar_worse_p(0, 7) == 1.0


def test_five_against_none_is_half_to_the_fifth():
    assert mcnemar_worse_p(5, 0) == pytest.approx(0.5 ** 5, rel=1e-12)
    assert mcnemar_worse_p(1, 0) == pytest.approx(0.5, rel=1e-12)


def test_thirteen_against_one_is_the_binomial_tail():
    by_hand = (math.comb(14, 13) + math.comb(14, 14)) / 2 ** 14  # = 15 / 16384
    assert mcnemar_worse_p(13, 1) == pytest.approx(by_hand, rel=1e-12)
    assert mcnemar_worse_p(3, 3) == pytest.approx((20 + 15 + 6 + 1) / 64, rel=1e-12)


def test_the_tail_stays_exact_on_a_thousand_disagreements():
    by_hand = sum(math.comb(1000, k) for k in range(600, 1001)) / 2 ** 1000
    assert binomial_upper_tail(600, 1000) == pytest.approx(by_hand, rel=1e-9)
    assert binomial_upper_tail(400, 1000) == pytest.approx(1 - binomial_upper_tail(601, 1000), rel=1e-9)


def test_holm_multiplies_the_smallest_p_by_the_number_of_classes_and_keeps_order():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


# --- decisions ---

def test_score_counts_accuracy_and_recall_per_class():
    result = score(labels=LABELS, predictions=["crazing"] * 8 + ["scratches"] * 4, classes=CLASSES)
    assert result.accuracy == 8 / 12
    assert result.recall == {"crazing": 1.0, "patches": 0.0, "scratches": 1.0}


def test_first_candidate_passes_without_a_champion():
    decision = decide(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES)
    assert decision.passed and decision.champion is None
    assert decision.reasons == ["no active version to compare with: the first tested candidate goes live"]


def test_first_candidate_with_too_few_test_images_fails():
    decision = decide(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES,
                      rule=GateRule(min_test_images=13))
    assert not decision.passed
    assert decision.reasons == ["12 images tested; at least 13 are needed"]


def test_one_flipped_image_in_two_hundred_passes():
    labels = ["crazing", "patches", "scratches", "inclusion"] * 50
    decision = _decide(labels, candidate_wrong=[7])
    assert decision.passed, decision.reasons
    accuracy = _checks(decision, "accuracy")[0]
    assert (accuracy["worse_only_candidate"], accuracy["better_only_candidate"]) == (1, 0)
    assert accuracy["p_value"] == pytest.approx(0.5)
    assert decision.reasons[0] == ("accuracy 0.9950 vs 1.0000: the candidate got 1 image wrong that the active "
                                   "version got right and 0 the other way (p = 0.50 >= 0.05): no evidence it is worse")


def test_a_clearly_worse_candidate_fails_on_accuracy_even_when_no_class_shows_it():
    labels = ["crazing"] * 50 + ["patches"] * 50 + ["scratches"] * 50 + ["inclusion"] * 50
    lost = [0, 1, 2, 3, 50, 51, 52, 100, 101, 102, 150, 151, 152]   # 4 + 3 + 3 + 3 images
    decision = _decide(labels, candidate_wrong=lost + [199], champion_wrong=[198, 199])
    assert not decision.passed
    assert decision.reasons == [
        "accuracy 0.9300 vs 0.9900: the candidate got 13 images wrong that the active version got right "
        "and 1 the other way (p = 0.0009 < 0.05): worse"]
    accuracy = _checks(decision, "accuracy")[0]
    assert accuracy["p_value"] == pytest.approx(15 / 2 ** 14)
    assert accuracy["alpha"] == 0.05 and accuracy["passed"] is False
    assert all(check["passed"] for check in decision.checks if check["check"] != "accuracy")


def test_a_significant_drop_within_the_practical_margin_passes_and_without_a_margin_fails():
    labels = ["crazing", "patches", "scratches", "inclusion"] * 5000
    args = dict(candidate_wrong=range(0, 30 * 4, 4), champion_wrong=range(1, 5 * 4, 4))
    decision = _decide(labels, **args)
    assert _checks(decision, "accuracy")[0]["p_value"] < 1e-4
    assert decision.passed, decision.reasons
    assert "within the margin 0.005: too small to matter" in decision.reasons[0]
    assert not _decide(labels, **args, rule=GateRule(practical_margin=0.0)).passed


def test_a_better_candidate_passes():
    labels = ["crazing", "patches"] * 50
    decision = _decide(labels, candidate_wrong=[0], champion_wrong=range(1, 40))
    assert decision.passed
    assert _checks(decision, "accuracy")[0]["p_value"] == pytest.approx(1.0)


def test_a_collapsing_class_fails_its_paired_test_with_holm_over_the_classes():
    labels = ["crazing"] * 30 + ["patches"] * 30 + ["scratches"] * 30 + ["inclusion"] * 30
    decision = _decide(labels, candidate_wrong=range(30, 40))   # patches loses 10 of its 30
    patches = _checks(decision, "class_recall", "patches")[0]
    assert (patches["candidate"], patches["champion"]) == (pytest.approx(20 / 30), 1.0)
    assert patches["p_value"] == pytest.approx(0.5 ** 10)
    assert patches["p_adjusted"] == pytest.approx(4 * 0.5 ** 10)
    assert patches["passed"] is False
    assert any(reason.startswith("recall of patches 0.6667 vs 1.0000 on 30 test images: the candidate got 10 images")
               and "Holm-adjusted over 4 classes 0.0039 < 0.05): worse" in reason for reason in decision.reasons)
    assert all(check["passed"] for check in decision.checks if check["class"] not in ("patches", None))


def test_holm_keeps_one_small_p_among_several_classes_from_refusing():
    labels = ["crazing"] * 30 + ["patches"] * 30 + ["scratches"] * 30
    no_hard_drop = GateRule(max_recall_drop=1.0, practical_margin=1.0)
    three = _decide(labels, candidate_wrong=range(5), rule=no_hard_drop)   # crazing: 5 against 0, p = 0.031
    assert _checks(three, "class_recall", "crazing")[0]["p_adjusted"] == pytest.approx(3 * 0.5 ** 5)
    assert three.passed, three.reasons
    alone = _decide(labels[:30], candidate_wrong=range(5), rule=no_hard_drop)
    assert not alone.passed and "recall of crazing" in alone.reasons[0]


def test_a_large_recall_drop_fails_whatever_the_p_value_once_it_is_two_images():
    labels = ["crazing"] * 5 + ["patches"] * 100
    one = _decide(labels, candidate_wrong=[0])
    assert one.passed, one.reasons
    two = _decide(labels, candidate_wrong=[0, 1])
    drop = _checks(two, "recall_drop", "crazing")[0]
    assert _checks(two, "class_recall", "crazing")[0]["passed"]   # p = 0.25: the statistics see nothing
    assert drop["passed"] is False and (drop["candidate"], drop["champion"]) == (0.6, 1.0)
    assert two.reasons == ["recall of crazing 0.6000 vs 1.0000 on 5 test images: a drop of 0.4000 (2 images net) "
                           "beyond 0.1: worse whatever the p-value"]


def test_a_recall_below_the_floor_fails_when_the_active_version_was_better():
    labels = ["crazing"] * 40 + ["patches"] * 40
    decision = _decide(labels, candidate_wrong=range(22), champion_wrong=range(18))   # 0.45 vs 0.55
    floor = _checks(decision, "recall_floor", "crazing")[0]
    assert floor["passed"] is False
    assert not decision.passed
    assert [check["check"] for check in decision.checks if not check["passed"]] == ["recall_floor"]
    assert decision.reasons == ["recall of crazing 0.4500 vs 0.5500 on 40 test images: below the floor 0.5: "
                                "fails whatever the test set's size"]


def test_a_recall_below_the_floor_that_the_active_version_shared_does_not_fail():
    labels = ["crazing"] * 40 + ["patches"] * 40
    decision = _decide(labels, candidate_wrong=range(22), champion_wrong=range(24))   # 0.45 vs 0.40
    assert decision.passed, decision.reasons
    assert "the active version was no better" in _checks(decision, "recall_floor", "crazing")[0]["sentence"]


def test_the_floor_is_not_checked_on_a_class_with_too_few_test_images_and_says_so():
    labels = ["crazing"] * 3 + ["patches"] * 40
    decision = _decide(labels, candidate_wrong=[0, 1], champion_wrong=[0, 1])
    assert decision.passed
    assert _checks(decision, "recall_floor", "crazing")[0]["measured"] is False
    assert any("crazing" in reason and "not measured (3 test images, fewer than 5)" in reason
               for reason in decision.reasons)


def test_map50_below_the_active_versions_by_more_than_the_tolerance_fails():
    same = dict(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES,
                champion_predictions=LABELS, champion_classes=CLASSES)
    assert decide(**same, candidate_map50=0.71, champion_map50=0.72).passed
    worse = decide(**same, candidate_map50=0.60, champion_map50=0.72)
    assert not worse.passed and any("mAP@0.5 0.6000" in reason for reason in worse.reasons)
    assert worse.detection == {"candidate_map50": 0.60, "champion_map50": 0.72, "map50_tolerance": 0.02}
    assert _checks(worse, "map50")[0]["passed"] is False
    headless = decide(**same, candidate_map50=None, champion_map50=0.72)
    assert not headless.passed and any("no detection head" in reason for reason in headless.reasons)
    # An active version without boxes leaves the candidate's mAP as information only.
    assert decide(**same, candidate_map50=0.1, champion_map50=None).passed


def test_a_new_class_with_few_test_images_is_not_measured_never_zero():
    labels = LABELS + ["oil_stain"] * 2
    decision = decide(labels=labels, candidate_predictions=LABELS + ["crazing", "crazing"],
                      candidate_classes=CLASSES + ["oil_stain"], champion_predictions=LABELS + ["crazing", "crazing"],
                      champion_classes=CLASSES)
    assert decision.passed
    assert decision.compared_classes == CLASSES and decision.candidate.images == 12
    assert decision.new_class_recall == {}
    assert _checks(decision, "new_class", "oil_stain")[0]["candidate"] is None
    assert "new class oil_stain: recall not measured (2 test images, fewer than 5)" in decision.reasons


def test_a_new_class_with_enough_test_images_reports_its_recall():
    labels = LABELS + ["oil_stain"] * 2
    decision = decide(labels=labels, candidate_predictions=LABELS + ["oil_stain", "crazing"],
                      candidate_classes=CLASSES + ["oil_stain"], champion_predictions=LABELS + ["crazing", "crazing"],
                      champion_classes=CLASSES, rule=GateRule(min_class_test_images=2))
    assert decision.new_class_recall == {"oil_stain": 0.5}
    assert not any("oil_stain" in reason for reason in decision.reasons)


def test_a_new_class_without_test_images_is_not_measured():
    decision = decide(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES + ["oil_stain"],
                      champion_predictions=LABELS, champion_classes=CLASSES)
    assert "new class oil_stain: recall not measured (0 test images, fewer than 5)" in decision.reasons


def test_the_decision_is_json_and_records_every_check_with_its_figures():
    decision = _decide(["crazing", "patches"] * 20, candidate_wrong=[0, 2], champion_wrong=[3])
    stored = json.loads(json.dumps(decision.to_dict()))
    assert stored == decision.to_dict()
    assert stored["rule"]["alpha"] == 0.05
    accuracy = next(check for check in stored["checks"] if check["check"] == "accuracy")
    assert {key: accuracy[key] for key in ("class", "candidate", "champion", "worse_only_candidate",
                                           "better_only_candidate", "alpha", "passed")} == {
        "class": None, "candidate": 38 / 40, "champion": 39 / 40, "worse_only_candidate": 2,
        "better_only_candidate": 1, "alpha": 0.05, "passed": True}
    assert accuracy["p_value"] == pytest.approx(4 / 8)   # P(X >= 2), X ~ Bin(3, 1/2)
    assert {check["check"] for check in stored["checks"]} == {"test_images", "accuracy", "class_recall",
                                                              "recall_drop", "recall_floor"}


def test_predictions_of_another_length_are_refused():
    with pytest.raises(ValueError):
        decide(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES,
               champion_predictions=LABELS[:-1], champion_classes=CLASSES)


def test_the_rule_reads_settings_and_refuses_unknown_or_impossible_values():
    rule = GateRule.from_mapping({"alpha": "0.01", "min_test_images": "30"})
    assert (rule.alpha, rule.min_test_images, rule.recall_floor) == (0.01, 30, 0.5)
    with pytest.raises(ValueError, match="accuracy_tolerance"):
        GateRule.from_mapping({"accuracy_tolerance": 0.005})
    with pytest.raises(ValueError, match="alpha"):
        GateRule(alpha=0)


# --- a class the active version knows and the candidate dropped ---

def test_a_candidate_that_no_longer_knows_a_class_the_active_version_serves_fails():
    labels = ["crazing", "patches", "scratches"] * 20
    without = ["crazing", "patches"]
    decision = decide(labels=labels, candidate_predictions=[l if l != "scratches" else "patches" for l in labels],
                      candidate_classes=without, champion_predictions=labels, champion_classes=CLASSES[:3])
    assert not decision.passed
    dropped = _checks(decision, "class_dropped", "scratches")
    assert len(dropped) == 1 and not dropped[0]["passed"]
    assert any("candidate does not" in reason and "scratches" in reason for reason in decision.reasons)


def test_a_class_people_retired_may_be_dropped():
    labels = ["crazing", "patches"] * 30
    decision = decide(labels=labels, candidate_predictions=labels, candidate_classes=["crazing", "patches"],
                      champion_predictions=labels, champion_classes=["crazing", "patches", "scratches"],
                      retired_classes=["scratches"])
    assert decision.passed, decision.reasons
    assert _checks(decision, "class_dropped", "scratches") == []
