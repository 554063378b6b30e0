"""Per-class thresholds a person set are not lost when a new version replaces the active one."""

from __future__ import annotations

import pytest

from inspections.models import DecisionThresholdChange, ModelVersionStatus, Retirement, ThresholdKind
from inspections.registry.services.model_versions import model_version_promote, model_version_rollback
from inspections.registry.services.thresholds import (
    box_threshold_default,
    version_box_thresholds_set,
    version_thresholds,
    version_thresholds_set,
)
from tests.factories import ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db

CLASSES = ["crazing", "inclusion", "scratches"]


@pytest.fixture
def tuned_v1():
    admin = UserFactory(username="ml-admin")
    v1 = ModelVersionFactory(classes=CLASSES)
    model_version_promote(version=v1, actor=admin)
    version_thresholds_set(version=v1, thresholds={"crazing": 0.8, "scratches": 0.85}, actor=admin, note="tuned")
    v1.refresh_from_db()
    return v1


def _current(version) -> dict[str, float]:
    return {entry.name: entry.threshold for entry in version_thresholds(version=version).classes}


def test_a_promoted_version_keeps_the_thresholds_set_on_the_version_it_replaces(tuned_v1):
    v2 = ModelVersionFactory(classes=CLASSES)
    model_version_promote(version=v2)
    v2.refresh_from_db()
    assert v2.status == ModelVersionStatus.ACTIVE
    assert v2.decision_thresholds == {"crazing": 0.8, "scratches": 0.85}
    assert _current(v2)["crazing"] == 0.8 and _current(v2)["scratches"] == 0.85


def test_carried_thresholds_say_where_they_came_from_in_the_history(tuned_v1):
    v2 = ModelVersionFactory(classes=CLASSES)
    model_version_promote(version=v2)
    notes = {(change.class_name, change.note) for change in DecisionThresholdChange.objects.filter(model_version=v2)}
    assert notes == {("crazing", f"carried from {tuned_v1.name}"), ("scratches", f"carried from {tuned_v1.name}")}


def test_only_classes_both_know_are_carried_and_new_classes_start_from_the_default(tuned_v1):
    v2 = ModelVersionFactory(classes=["crazing", "inclusion", "no_defect"])
    model_version_promote(version=v2)
    v2.refresh_from_db()
    assert v2.decision_thresholds == {"crazing": 0.8}
    assert "no_defect" not in v2.decision_thresholds


def test_a_threshold_set_on_the_candidate_before_promotion_wins_over_the_carried_one(tuned_v1):
    v2 = ModelVersionFactory(classes=CLASSES)
    version_thresholds_set(version=v2, thresholds={"crazing": 0.7}, note="set on the candidate")
    model_version_promote(version=v2)
    v2.refresh_from_db()
    assert v2.decision_thresholds == {"crazing": 0.7, "scratches": 0.85}


def test_a_rollback_returns_to_the_older_versions_own_thresholds(tuned_v1):
    v2 = ModelVersionFactory(classes=CLASSES)
    model_version_promote(version=v2)
    version_thresholds_set(version=v2, thresholds={"crazing": 0.9}, note="tuned on v2")
    back = model_version_rollback()
    back.refresh_from_db()
    assert back.pk == tuned_v1.pk
    assert back.decision_thresholds == {"crazing": 0.8, "scratches": 0.85}
    assert ModelVersionFactory._meta.model.objects.get(pk=v2.pk).retirement == Retirement.ROLLED_BACK


@pytest.fixture
def boxed_v1(tuned_v1):
    version_box_thresholds_set(version=tuned_v1, thresholds={"crazing": 0.6, "scratches": 0.45}, note="boxes tuned")
    tuned_v1.refresh_from_db()
    return tuned_v1


def test_box_thresholds_carry_forward_for_the_classes_both_know_and_say_so(boxed_v1):
    v2 = ModelVersionFactory(classes=["crazing", "inclusion", "no_defect"])
    model_version_promote(version=v2)
    v2.refresh_from_db()
    assert v2.box_thresholds == {"crazing": 0.6}
    assert v2.box_thresholds_revision == 1
    rows = list(DecisionThresholdChange.objects.filter(model_version=v2, kind=ThresholdKind.BOX)
                .values_list("class_name", "old_threshold", "new_threshold", "note"))
    assert rows == [("crazing", box_threshold_default(), 0.6, f"carried from {boxed_v1.name}")]
    # The decision thresholds travelled beside them, in their own rows.
    assert v2.decision_thresholds == {"crazing": 0.8}
    assert DecisionThresholdChange.objects.filter(model_version=v2, kind=ThresholdKind.DECISION).count() == 1


def test_a_box_threshold_set_on_the_candidate_wins_over_the_carried_one(boxed_v1):
    v2 = ModelVersionFactory(classes=CLASSES)
    version_box_thresholds_set(version=v2, thresholds={"scratches": 0.2}, note="set on the candidate")
    model_version_promote(version=v2)
    v2.refresh_from_db()
    assert v2.box_thresholds == {"crazing": 0.6, "scratches": 0.2}


def test_a_rollback_returns_to_the_older_versions_own_box_thresholds(boxed_v1):
    v2 = ModelVersionFactory(classes=CLASSES)
    model_version_promote(version=v2)
    version_box_thresholds_set(version=v2, thresholds={"crazing": 0.9})
    back = model_version_rollback()
    back.refresh_from_db()
    assert back.pk == boxed_v1.pk and back.box_thresholds == {"crazing": 0.6, "scratches": 0.45}
