"""The anomaly gate's decisions (mlcore.anomaly_gate): figures, the first model's floors, paired comparisons."""

from __future__ import annotations

import pytest

from mlcore.anomaly_gate import AnomalyGateRule, decide_anomaly, figures, image_auroc

GOOD = [0.2, 0.3, 0.4, 0.5, 0.6, 0.5, 0.4, 0.3, 0.2, 0.7, 0.6, 0.5]    # 12 held-out good images, none flagged
DEFECTS = [1.5, 2.0, 3.0, 1.2, 4.0, 2.5]                               # 6 defects, all flagged


def test_auroc_counts_ties_half_and_needs_both_kinds():
    assert image_auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert image_auroc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert image_auroc([0.5], [0.5]) == 0.5
    assert image_auroc([0.1, 0.5], [0.5, 0.9]) == pytest.approx(0.875)  # 3 wins and one tie of 4 pairs
    assert image_auroc([], [1.0]) is None


def test_figures_flag_above_one():
    found = figures([0.5, 1.0, 1.5], [0.9, 2.0])
    assert (found.false_alarms, found.misses) == (1, 1)  # exactly 1 is not above the threshold
    assert found.false_alarm_rate == pytest.approx(1 / 3) and found.miss_rate == 0.5


def test_a_first_model_meeting_the_floors_goes_live():
    decision = decide_anomaly(candidate_good=GOOD, candidate_defects=DEFECTS)
    assert decision.passed
    assert decision.reasons[0].startswith("no active anomaly model to compare with")
    assert decision.candidate.auroc == 1.0 and decision.champion is None


def test_a_first_model_with_too_many_false_alarms_is_held_back():
    noisy = [1.5, 1.6] + GOOD[2:]  # 2 of 12 flagged: 16.7 % above the 10 % limit
    decision = decide_anomaly(candidate_good=noisy, candidate_defects=DEFECTS)
    assert not decision.passed
    assert decision.reasons == [next(c["sentence"] for c in decision.checks if c["check"] == "false_alarm_floor")]
    assert "above the limit 0.1" in decision.reasons[0]


def test_a_first_model_that_ranks_defects_below_good_is_held_back():
    decision = decide_anomaly(candidate_good=GOOD, candidate_defects=[0.1, 0.2, 0.3, 0.2, 0.1, 0.25])
    assert not decision.passed and "below the floor 0.8" in decision.reasons[0]


def test_a_line_with_only_good_images_goes_live_and_says_auroc_was_not_measured():
    decision = decide_anomaly(candidate_good=GOOD, candidate_defects=[])
    assert decision.passed
    assert any("image AUROC not measured: 0 labelled defects" in reason for reason in decision.reasons)


def test_too_few_images_are_not_measured_rather_than_refused():
    decision = decide_anomaly(candidate_good=[2.0, 3.0], candidate_defects=[0.1])
    assert decision.passed
    assert all(not check["measured"] for check in decision.checks)


def test_a_candidate_that_flags_many_more_good_images_than_the_active_model_is_refused():
    good = [0.5] * 40
    candidate = [1.5] * 12 + [0.5] * 28  # 12 good images flagged that the active model passes
    decision = decide_anomaly(candidate_good=candidate, candidate_defects=DEFECTS,
                              champion_good=good, champion_defects=DEFECTS)
    assert not decision.passed
    check = next(c for c in decision.checks if c["check"] == "false_alarms")
    assert (check["worse_only_candidate"], check["better_only_candidate"]) == (12, 0)
    assert check["p_value"] < 0.001 and check["sentence"] in decision.reasons


def test_one_more_false_alarm_is_a_coin_toss_not_a_refusal():
    candidate = [1.5] + GOOD[1:]
    decision = decide_anomaly(candidate_good=candidate, candidate_defects=DEFECTS, champion_good=GOOD,
                              champion_defects=DEFECTS)
    assert decision.passed
    assert "no evidence it is worse" in next(c["sentence"] for c in decision.checks if c["check"] == "false_alarms")


def test_a_candidate_that_misses_defects_the_active_model_catches_is_refused():
    defects = [2.0] * 20
    decision = decide_anomaly(candidate_good=GOOD, candidate_defects=[0.9] * 10 + [2.0] * 10,
                              champion_good=GOOD, champion_defects=defects)
    assert not decision.passed
    assert any(c["check"] == "misses" and not c["passed"] for c in decision.checks)


def test_an_auroc_significantly_lower_beyond_the_tolerance_is_refused():
    # 30 good and 30 defect images; the candidate scores every defect below 1 too (misses are their
    # own check), and ranks half of them among the good images.
    good = [0.1 + 0.02 * i for i in range(30)]
    champion_defects = [1.5 + 0.1 * i for i in range(30)]
    candidate_defects = [0.95 - 0.01 * i for i in range(15)] + [0.2 + 0.02 * i for i in range(15)]
    decision = decide_anomaly(candidate_good=good, candidate_defects=candidate_defects, champion_good=good,
                              champion_defects=champion_defects, rule=AnomalyGateRule())
    auroc = next(c for c in decision.checks if c["check"] == "auroc")
    assert not auroc["passed"] and auroc["champion"] == 1.0 and auroc["p_value"] < 0.05
    assert auroc["sentence"] in decision.reasons


def test_one_good_image_above_a_defect_is_within_chance_for_auroc():
    candidate = [1.3] + GOOD[1:]  # above the defect at 1.2: AUROC 71/72, 0.014 lower, beyond a tolerance of 0.01
    decision = decide_anomaly(candidate_good=candidate, candidate_defects=DEFECTS, champion_good=GOOD,
                              champion_defects=DEFECTS, rule=AnomalyGateRule(auroc_tolerance=0.01))
    auroc = next(c for c in decision.checks if c["check"] == "auroc")
    assert auroc["passed"] and "no evidence it is worse" in auroc["sentence"]


def test_a_better_candidate_passes_with_its_comparisons_as_reasons():
    decision = decide_anomaly(candidate_good=GOOD, candidate_defects=DEFECTS, champion_good=[1.5] * 3 + GOOD[3:],
                              champion_defects=[0.5, 0.6] + DEFECTS[2:])
    assert decision.passed
    assert {c["check"] for c in decision.checks} == {"false_alarms", "misses", "auroc"}
    assert decision.to_dict()["kind"] == "anomaly"


def test_scores_of_different_images_are_refused():
    with pytest.raises(ValueError):
        decide_anomaly(candidate_good=GOOD, candidate_defects=DEFECTS, champion_good=GOOD[:3], champion_defects=DEFECTS)
