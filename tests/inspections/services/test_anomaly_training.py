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
