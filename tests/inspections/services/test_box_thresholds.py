"""Per-class box thresholds of a model version (the model's boxes scoring below them are hidden in
the review view and cannot be accepted): their default, setting them all or nothing, the audit
rows (kind box, old -> new, who, note), their own revision."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from inspections.errors import ApplicationError, StaleRevision
from inspections.models import DecisionThresholdChange, ThresholdKind
from inspections.registry.services.thresholds import (
    box_threshold_default,
    box_threshold_of,
    threshold_history,
    version_box_thresholds,
    version_box_thresholds_set,
    version_thresholds_set,
)
from tests.conftest import ROOT
from tests.factories import AnomalyVersionFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_default_is_the_score_the_detection_shows_by_default():
    from mlcore.detection import KEPT_SCORE

    version = ModelVersionFactory(classes=["crazing", "scratches"])
    assert box_threshold_default() == KEPT_SCORE
    state = version_box_thresholds(version=version)
    assert (state.default, state.revision) == (KEPT_SCORE, 0)
    assert [(c.name, c.threshold, c.default) for c in state.classes] == [
        ("crazing", KEPT_SCORE, KEPT_SCORE), ("scratches", KEPT_SCORE, KEPT_SCORE)]


def test_reading_the_default_loads_no_tensorflow():
    # mlcore.detection imports Keras; the constant lives in mlcore.artefact, which does not.
    code = ("import json, sys; from inspections.registry.services.thresholds import box_threshold_default; "
            "value = box_threshold_default(); "
            "print(json.dumps([value, sorted(m for m in ('keras', 'tensorflow') if m in sys.modules)]))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.test", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code], capture_output=True,
                         text=True, timeout=120, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    value, loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert value == box_threshold_default()
    assert loaded == []


def test_a_change_is_stored_with_its_own_revision_and_audited_as_a_box_change():
    admin = UserFactory(username="ml-bo")
    version = ModelVersionFactory(classes=["crazing", "scratches"])
    version = version_box_thresholds_set(version=version, thresholds={"scratches": 0.55}, note="faint scratches",
                                         actor=admin)
    version.refresh_from_db()
    assert version.box_thresholds == {"scratches": 0.55} and version.box_thresholds_revision == 1
    assert version.decision_thresholds == {} and version.thresholds_revision == 0  # the other kind is untouched
    change = DecisionThresholdChange.objects.get()
    assert (change.kind, change.class_name, change.old_threshold, change.new_threshold, change.changed_by,
            change.note, change.revision) == (ThresholdKind.BOX, "scratches", box_threshold_default(), 0.55, admin,
                                              "faint scratches", 1)
    assert list(threshold_history(version=version, kind=ThresholdKind.BOX)) == [change]
    assert not threshold_history(version=version).exists()  # the decision history shows decision changes only
    assert box_threshold_of(version=version, label="scratches") == 0.55
    assert box_threshold_of(version=version, label="crazing") == box_threshold_default()


def test_the_same_value_again_writes_nothing_and_a_second_change_records_the_old_value():
    version = ModelVersionFactory(classes=["crazing", "scratches"])
    version = version_box_thresholds_set(version=version, thresholds={"crazing": 0.4})
    version = version_box_thresholds_set(version=version, thresholds={"crazing": 0.4})
    assert version.box_thresholds_revision == 1 and DecisionThresholdChange.objects.count() == 1
    version = version_box_thresholds_set(version=version, thresholds={"crazing": 0.7, "scratches": 0.3 + 1e-9})
    assert version.box_thresholds_revision == 2
    assert list(DecisionThresholdChange.objects.filter(revision=2).order_by("class_name")
                .values_list("class_name", "old_threshold", "new_threshold")) == [
        ("crazing", 0.4, 0.7), ("scratches", box_threshold_default(), 0.3 + 1e-9)]


@pytest.mark.parametrize("thresholds", [
    {"crazing": -0.01}, {"crazing": 1.01}, {"crazing": "0.5"}, {"crazing": True}, {"crazing": None},
    {"crazing": math.nan}, {"crazing": math.inf}, {"pitted_surface": 0.5}, {}, [0.5], None,
    {"crazing": 0.5, "scratches": 2},  # all or nothing
])
def test_bad_thresholds_are_refused_and_change_nothing(thresholds):
    version = ModelVersionFactory(classes=["crazing", "scratches"])
    with pytest.raises(ApplicationError) as refused:
        version_box_thresholds_set(version=version, thresholds=thresholds)
    assert refused.value.code == "invalid_thresholds"
    version.refresh_from_db()
    assert version.box_thresholds == {} and version.box_thresholds_revision == 0
    assert not DecisionThresholdChange.objects.exists()


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0])
def test_zero_shows_every_box_and_one_is_the_top(value):
    version = version_box_thresholds_set(version=ModelVersionFactory(), thresholds={"crazing": value})
    assert version.box_thresholds == {"crazing": float(value)}


def test_a_stale_revision_is_refused():
    version = ModelVersionFactory()
    version_box_thresholds_set(version=version, thresholds={"crazing": 0.5}, expected_revision=0)
    with pytest.raises(StaleRevision) as stale:
        version_box_thresholds_set(version=version, thresholds={"crazing": 0.6}, expected_revision=0)
    assert stale.value.code == "thresholds_changed" and stale.value.details == {"revision": 1}
    version.refresh_from_db()
    assert version.box_thresholds == {"crazing": 0.5}


def test_decision_and_box_revisions_do_not_stale_each_other():
    version = ModelVersionFactory()
    version_thresholds_set(version=version, thresholds={"crazing": 0.8}, expected_revision=0)
    version = version_box_thresholds_set(version=version, thresholds={"crazing": 0.5}, expected_revision=0)
    assert (version.thresholds_revision, version.box_thresholds_revision) == (1, 1)
    assert set(DecisionThresholdChange.objects.values_list("kind", flat=True)) == {"decision", "box"}


def test_an_anomaly_model_has_no_box_thresholds():
    with pytest.raises(ApplicationError) as refused:
        version_box_thresholds_set(version=AnomalyVersionFactory(), thresholds={"crazing": 0.5})
    assert refused.value.code == "not_a_classifier"
