"""Per-class thresholds a person set are not lost when a new version replaces the active one."""

from __future__ import annotations

import pytest

from inspections.models import DecisionThresholdChange, ModelVersionStatus, Retirement
from inspections.registry.services.model_versions import model_version_promote, model_version_rollback
from inspections.registry.services.thresholds import version_thresholds, version_thresholds_set
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
