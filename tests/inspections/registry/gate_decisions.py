"""Stored gate decisions for tests, made by the real gate (``mlcore.gate.decide``) on hand-made
predictions, so a version built by a factory carries what a training run would have stored."""

from __future__ import annotations

from mlcore.gate import decide

SHARED = ["crazing", "inclusion"]


def refused_gate_decision(*, champion_version: int = 1, candidate_version: int = 2) -> dict:
    """The candidate loses 6 of 10 crazing images the active version got right (recall 0.4, below
    the floor) and learned ``no_defect``, which has one test image: too few to be measured."""
    labels = ["crazing"] * 10 + ["inclusion"] * 10 + ["no_defect"]
    champion = ["crazing"] * 10 + ["inclusion"] * 10 + ["crazing"]
    candidate = ["inclusion"] * 6 + ["crazing"] * 4 + ["inclusion"] * 10 + ["no_defect"]
    decision = decide(labels=labels, candidate_predictions=candidate, candidate_classes=[*SHARED, "no_defect"],
                      champion_predictions=champion, champion_classes=SHARED).to_dict()
    assert not decision["passed"]
    return {**decision, "promoted": False, "champion_version": champion_version,
            "candidate_version": candidate_version, "test_images": len(labels), "human_confirmed_test_labels": 0}


def passed_gate_decision() -> dict:
    labels = ["crazing"] * 10 + ["inclusion"] * 10
    decision = decide(labels=labels, candidate_predictions=labels, candidate_classes=SHARED,
                      champion_predictions=labels, champion_classes=SHARED).to_dict()
    assert decision["passed"]
    return {**decision, "promoted": True, "champion_version": 1, "candidate_version": 2, "test_images": len(labels),
            "human_confirmed_test_labels": 0}
