"""Anomaly training runs in-process: the parameters and the data they need, and cancelling. A real run
(the training worker, the gate, the promotion) is tests/e2e/test_anomaly_mode.py's first half."""

from __future__ import annotations

import pytest

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.errors import ApplicationError
from inspections.models import ModelVersionKind, TrainingRun, TrainingRunStatus
from inspections.registry.services.anomaly_training import anomaly_parameters_clean
from inspections.registry.services.training import training_run_cancel, training_run_execute, training_run_start
from tests.conftest import TINY_ANOMALY_PARAMS
from tests.data import good_and_defect_folders

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("params", "message"), [
    ({"false_alarm_rate": 0.7}, "false-alarm rate must be above 0 and below 0.5"),
    ({"input_size": 8}, "input_size must be between 32 and 1024"),
    ({"input_size": "big"}, "input_size must be a whole number"),
    ({"head_epochs": 3}, "head_epochs is not a parameter of an anomaly run"),
])
def test_bad_anomaly_parameters_are_refused_in_words(params, message):
    with pytest.raises(ApplicationError) as refused:
        anomaly_parameters_clean(params)
    assert refused.value.code == "invalid_parameter" and message in refused.value.message


def test_an_anomaly_run_needs_enough_no_defect_images(tmp_path, no_queue):
    good_and_defect_folders(tmp_path / "data", good=10, defects=3)
    dataset_import_folder(root=tmp_path / "data")
    with pytest.raises(ApplicationError) as refused:
        training_run_start(requested_by=None, kind=ModelVersionKind.ANOMALY, params={"false_alarm_rate": 0.2})
    assert refused.value.code == "not_enough_data"
    assert "images labelled no_defect" in refused.value.message and "needs at least 14" in refused.value.message
    assert not TrainingRun.objects.exists() and no_queue == []


def test_a_queued_anomaly_run_is_cancelled_like_any_run(tmp_path, no_queue):
    good_and_defect_folders(tmp_path / "data", good=30, defects=0)
    dataset_import_folder(root=tmp_path / "data")
    run = training_run_start(requested_by=None, kind=ModelVersionKind.ANOMALY, params=TINY_ANOMALY_PARAMS)
    assert run.kind == ModelVersionKind.ANOMALY and run.parameters["false_alarm_rate"] == 0.2
    cancelled = training_run_cancel(run=run)
    assert cancelled.status == TrainingRunStatus.CANCELLED
    assert training_run_execute(run_id=run.pk) is None  # only a queued run starts


def _gate_snapshot(*, good: int, defects: int):
    """A snapshot of ``good`` held-out no_defect images and ``defects`` labelled defects."""
    from inspections.catalog.models import NO_DEFECT_CLASS, DefectClass, Split
    from inspections.models import DatasetSnapshot, DatasetSnapshotItem
    from tests.factories import InspectionImageFactory

    snapshot = DatasetSnapshot.objects.create(image_count=good + defects, checksum="0" * 64)
    no_defect = DefectClass.objects.get_or_create(name=NO_DEFECT_CLASS)[0]
    scratches = DefectClass.objects.get_or_create(name="scratches")[0]
    for i in range(good + defects):
        DatasetSnapshotItem.objects.create(snapshot=snapshot, image=InspectionImageFactory(),
                                           label=no_defect if i < good else scratches,
                                           split=Split.TEST if i < good else Split.TRAIN)
    return snapshot


def test_the_anomaly_gate_takes_its_rule_from_the_settings(settings, monkeypatch, no_queue):
    """STEELQC_ANOMALY_GATE_*: a first anomaly model flagging 2 of 20 held-out good images (10 %)
    passes the default floor (at most 10 %) and is refused under a plant's stricter 5 %."""
    from inspections.models import ModelVersionStatus
    from inspections.registry.services import anomaly_training
    from tests.factories import AnomalyVersionFactory

    good, defects = 20, 6
    scores = [1.5, 1.5] + [0.5] * (good - 2) + [2.0] * defects  # the gate's order: good images, then defects
    monkeypatch.setattr(anomaly_training, "version_score_files", lambda *, version, paths: scores[:len(paths)])
    snapshot = _gate_snapshot(good=good, defects=defects)

    first = AnomalyVersionFactory(status=ModelVersionStatus.CANDIDATE)
    decision = anomaly_training.anomaly_gate_and_promote(candidate=first, snapshot=snapshot)
    assert decision["passed"] and decision["rule"]["max_false_alarm_rate"] == 0.1
    first.refresh_from_db()
    assert first.status == ModelVersionStatus.ACTIVE
    first.status = ModelVersionStatus.RETIRED
    first.save(update_fields=["status"])

    settings.STEELQC_ANOMALY_GATE_MAX_FALSE_ALARM_RATE = 0.05
    assert anomaly_training.anomaly_gate_rule().max_false_alarm_rate == 0.05
    strict = AnomalyVersionFactory(status=ModelVersionStatus.CANDIDATE)
    decision = anomaly_training.anomaly_gate_and_promote(candidate=strict, snapshot=snapshot)
    assert not decision["passed"] and decision["rule"]["max_false_alarm_rate"] == 0.05
    assert any("false-alarm" in reason for reason in decision["reasons"]), decision["reasons"]
    strict.refresh_from_db()
    assert strict.status == ModelVersionStatus.CANDIDATE
