from mlcore.gate import GateRule, decide, score

CLASSES = ["crazing", "patches", "scratches"]
LABELS = ["crazing"] * 4 + ["patches"] * 4 + ["scratches"] * 4


def test_score_counts_accuracy_and_recall_per_class():
    result = score(labels=LABELS, predictions=["crazing"] * 8 + ["scratches"] * 4, classes=CLASSES)
    assert result.accuracy == 8 / 12
    assert result.recall == {"crazing": 1.0, "patches": 0.0, "scratches": 1.0}


def test_first_candidate_passes_without_a_champion():
    decision = decide(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES)
    assert decision.passed and decision.champion is None


def test_equal_candidate_passes():
    decision = decide(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES,
                      champion_predictions=LABELS, champion_classes=CLASSES)
    assert decision.passed


def test_lower_accuracy_fails_and_names_the_class_that_dropped():
    worse = ["crazing"] * 4 + ["crazing"] * 2 + ["patches"] * 2 + ["scratches"] * 4
    decision = decide(labels=LABELS, candidate_predictions=worse, candidate_classes=CLASSES,
                      champion_predictions=LABELS, champion_classes=CLASSES)
    assert not decision.passed
    assert any("accuracy" in reason for reason in decision.reasons)
    assert any("recall of patches" in reason for reason in decision.reasons)
    assert not any("recall of crazing" in reason for reason in decision.reasons)


def test_a_recall_drop_within_tolerance_passes():
    candidate = ["crazing"] * 3 + ["patches"] + ["patches"] * 4 + ["scratches"] * 4
    decision = decide(labels=LABELS, candidate_predictions=candidate, candidate_classes=CLASSES,
                      champion_predictions=LABELS, champion_classes=CLASSES,
                      rule=GateRule(accuracy_tolerance=0.1, recall_tolerance=0.3))
    assert decision.passed


def test_a_candidate_with_a_new_class_is_compared_on_shared_classes_and_reports_the_new_one():
    labels = LABELS + ["oil_stain"] * 2
    candidate = LABELS + ["oil_stain", "crazing"]
    champion = LABELS + ["crazing", "crazing"]
    decision = decide(labels=labels, candidate_predictions=candidate, candidate_classes=CLASSES + ["oil_stain"],
                      champion_predictions=champion, champion_classes=CLASSES)
    assert decision.passed
    assert decision.compared_classes == CLASSES
    assert decision.candidate.images == 12
    assert decision.new_class_recall == {"oil_stain": 0.5}


def test_a_one_image_recall_drop_in_a_small_class_is_forgiven_two_are_not():
    labels = ["crazing"] * 30 + ["patches"] * 30
    one_wrong = ["crazing"] * 29 + ["patches"] + ["patches"] * 30
    two_wrong = ["crazing"] * 28 + ["patches"] * 2 + ["patches"] * 30
    rule = GateRule(accuracy_tolerance=0.05)
    assert rule.recall_slack(30) == 1 / 30 and rule.recall_slack(200) == 0.02
    forgiven = decide(labels=labels, candidate_predictions=one_wrong, candidate_classes=CLASSES,
                      champion_predictions=labels, champion_classes=CLASSES, rule=rule)
    assert forgiven.passed, forgiven.reasons
    refused = decide(labels=labels, candidate_predictions=two_wrong, candidate_classes=CLASSES,
                     champion_predictions=labels, champion_classes=CLASSES, rule=rule)
    assert not refused.passed and any("recall of crazing" in reason for reason in refused.reasons)
    strict = decide(labels=labels, candidate_predictions=one_wrong, candidate_classes=CLASSES,
                    champion_predictions=labels, champion_classes=CLASSES,
                    rule=GateRule(accuracy_tolerance=0.05, recall_tolerance_images=0))
    assert not strict.passed


def test_map50_below_the_active_versions_by_more_than_the_tolerance_fails():
    same = dict(labels=LABELS, candidate_predictions=LABELS, candidate_classes=CLASSES,
                champion_predictions=LABELS, champion_classes=CLASSES)
    assert decide(**same, candidate_map50=0.71, champion_map50=0.72).passed
    worse = decide(**same, candidate_map50=0.60, champion_map50=0.72)
    assert not worse.passed and any("mAP@0.5 0.6000" in reason for reason in worse.reasons)
    assert worse.detection == {"candidate_map50": 0.60, "champion_map50": 0.72, "map50_tolerance": 0.02}
    headless = decide(**same, candidate_map50=None, champion_map50=0.72)
    assert not headless.passed and any("no detection head" in reason for reason in headless.reasons)
    # An active version without boxes leaves the candidate's mAP as information only.
    assert decide(**same, candidate_map50=0.1, champion_map50=None).passed
