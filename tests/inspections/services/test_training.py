"""Training-run services in-process: parameters, gate, promotion races, continuous learning."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.errors import ApplicationError
from inspections.models import ModelVersion, ModelVersionStatus, Review, TrainingRun, TrainingRunStatus
from inspections.registry.services.model_versions import (
    model_version_promote,
    model_version_register,
    model_version_rollback,
)
from inspections.registry.services.promotion import gate_and_promote
from inspections.registry.services.training import (
    _snapshot_freeze,
    training_parameters_clean,
    training_run_start,
    training_runs_fail_stale,
)
from inspections.review.services.continuous_learning import training_run_start_if_due
from tests.conftest import train_tiny_model
from tests.data import tiny_dataset
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db




@pytest.fixture
def tiny_images(tmp_path):
    tiny_dataset(tmp_path / "data", seed=5, per_class=40)
    dataset_import_folder(root=tmp_path / "data")


@pytest.mark.parametrize(
    "params, message",
    [
        ({"backbone": "vgg16"}, "backbone must be one of"),
        ({"head_epochs": 0}, "between 1 and 1000"),
        ({"head_epochs": "many"}, "must be a number"),
        ({"learning_rate_hack": 1}, "Unknown training parameter"),
        ({"finetune": "maybe"}, "finetune must be"),
        ({"serving_int8": "false"}, "serving_int8 must be true or false"),
        ({"serving_int8": 0}, "serving_int8 must be true or false"),
        ({"serving_export": "no"}, "serving_export must be true or false"),
    ],
)
def test_bad_training_parameters_are_refused_with_a_reason(params, message):
    with pytest.raises(ApplicationError, match=message):
        training_parameters_clean(params)


@pytest.mark.parametrize("switch", ["serving_int8", "serving_export"])
def test_the_serving_copies_can_be_switched_off_per_run(switch):
    assert training_parameters_clean({switch: False})[switch] is False
    assert switch not in training_parameters_clean({})  # mlcore's default: made and tried


def test_installation_defaults_apply_and_a_runs_own_parameters_win(settings):
    settings.STEELQC_TRAINING_DEFAULTS = {"input_size": 128, "head_epochs": 60, "finetune": "off"}
    assert training_parameters_clean({"head_epochs": 5}) == {
        "backbone": settings.STEELQC_BACKBONE, "weights": "imagenet", "finetune": "off", "detection": "auto",
        "input_size": 128, "head_epochs": 5}


def test_a_bad_installation_default_is_named_by_the_start_up_check_and_refused_at_start(settings, no_queue):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.STEELQC_TRAINING_DEFAULTS = {"input_size": 4}
    with pytest.raises(SystemCheckError, match=r"inspections.E001.*STEELQC_TRAINING_DEFAULTS: input_size must be between"):
        call_command("check")
    with pytest.raises(ApplicationError, match="input_size must be between") as error:
        training_run_start(requested_by=None)
    assert error.value.code == "invalid_parameter" and not TrainingRun.objects.exists()


def test_defaults_fill_in_for_missing_parameters(settings):
    assert training_parameters_clean({}) == {"backbone": settings.STEELQC_BACKBONE, "weights": "imagenet", "finetune": "auto",
                                             "detection": "auto"}


def test_training_needs_two_labelled_classes(no_queue):
    with pytest.raises(ApplicationError) as error:
        training_run_start(requested_by=None)
    assert error.value.code == "not_enough_data"
    assert not TrainingRun.objects.exists()


def test_snapshot_freezes_the_labels_and_splits_of_the_moment(no_queue, tiny_images):
    run = training_run_start(requested_by=UserFactory())
    frozen = {(i.image_id, i.label.name, i.split) for i in run.snapshot.items.select_related("label")}
    assert len(frozen) == 80 == run.snapshot.image_count
    from inspections.models import DefectClass, InspectionImage

    image_id = run.snapshot.items.first().image_id
    InspectionImage.objects.filter(pk=image_id).update(label=DefectClass.objects.get(name="patches"))
    assert {(i.image_id, i.label.name, i.split) for i in run.snapshot.items.select_related("label")} == frozen


def test_a_worse_candidate_is_not_promoted_and_the_reasons_name_the_classes(no_queue, tiny_images, tiny_model_dirs, tmp_path):
    champion = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    # The gate reads the candidate's metrics and runs it on the test split: no serving copy needed.
    worse = model_version_register(model_dir=train_tiny_model(tmp_path / "swapped", seed=3, swap_labels=True,
                                                              serving_export=False))
    decision = gate_and_promote(candidate=worse, snapshot=_snapshot_freeze()[0])
    assert decision["passed"] is False and decision["promoted"] is False
    assert any("accuracy" in reason for reason in decision["reasons"])
    assert any("recall of crazing" in r or "recall of inclusion" in r for r in decision["reasons"])
    assert decision["champion"]["accuracy"] >= 0.9
    worse.refresh_from_db()
    assert worse.status == ModelVersionStatus.CANDIDATE
    assert worse.metrics["gate"]["reasons"] == decision["reasons"]
    assert ModelVersion.objects.get(status=ModelVersionStatus.ACTIVE) == champion


def test_an_equally_good_candidate_replaces_the_champion(no_queue, tiny_images, tiny_model_dirs):
    champion = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    candidate = model_version_register(model_dir=tiny_model_dirs[1])
    decision = gate_and_promote(candidate=candidate, snapshot=_snapshot_freeze()[0])
    assert decision["promoted"], decision["reasons"]
    champion.refresh_from_db()
    assert champion.status == ModelVersionStatus.RETIRED
    assert ModelVersion.objects.get(status=ModelVersionStatus.ACTIVE) == candidate


def test_rollback_brings_back_the_previous_version(no_queue, tiny_model_dirs):
    first = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    second = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[1]))
    assert model_version_rollback() == first
    assert ModelVersion.objects.get(status=ModelVersionStatus.ACTIVE) == first
    second.refresh_from_db()
    assert second.status == ModelVersionStatus.RETIRED


@pytest.mark.django_db(transaction=True)
def test_concurrent_promotions_leave_exactly_one_active(no_queue, tiny_model_dirs):
    versions = [model_version_register(model_dir=tiny_model_dirs[i % 2]) for i in range(4)]
    barrier = threading.Barrier(len(versions))
    errors = []

    def promote(version):
        try:
            barrier.wait()
            model_version_promote(version=version)
        except Exception as error:  # collected and asserted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).count() == 1


def test_continuous_learning_does_nothing_without_new_labels(no_queue, tiny_images):
    assert training_run_start_if_due(minimum=1) is None
    assert not TrainingRun.objects.exists()


def test_continuous_learning_starts_a_run_once_enough_new_labels_exist(no_queue, tiny_images):
    from inspections.models import InspectionImage

    reviewer = UserFactory()
    for image in InspectionImage.objects.all()[:3]:
        Review.objects.create(image=image, label=image.label, previous_label=image.label, reviewer=reviewer)
    assert training_run_start_if_due(minimum=4) is None
    run = training_run_start_if_due(minimum=3)
    assert run is not None and run.trigger == "schedule"
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRunStatus.SUCCEEDED)
    assert training_run_start_if_due(minimum=1) is None  # the labels were used by that run


def test_runs_whose_worker_went_silent_are_marked_failed(no_queue):
    stale = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    assert training_runs_fail_stale(older_than_s=600) == 1
    stale.refresh_from_db()
    assert stale.status == TrainingRunStatus.FAILED and "stopped reporting" in stale.error


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "1e400", 10**400])
def test_non_finite_or_overflowing_numbers_are_refused(value):
    with pytest.raises(ApplicationError, match="head_epochs must"):
        training_parameters_clean({"head_epochs": value})


def test_continuous_learning_does_not_count_decisions_taken_back(no_queue, tiny_images):
    from inspections.models import InspectionImage

    reviewer = UserFactory()
    kept, taken_back = InspectionImage.objects.all()[:2]
    Review.objects.create(image=kept, label=kept.label, previous_label=kept.label, reviewer=reviewer)
    mistake = Review.objects.create(image=taken_back, label=kept.label, previous_label=taken_back.label,
                                    reviewer=reviewer)
    Review.objects.create(image=taken_back, decision="undo", undoes=mistake, label=taken_back.label,
                          previous_label=kept.label, reviewer=reviewer)
    assert training_run_start_if_due(minimum=2) is None
    assert training_run_start_if_due(minimum=1) is not None


def test_continuous_learning_retrains_an_active_anomaly_model_on_new_good_labels(tmp_path, no_queue):
    """Anomaly mode on (an active anomaly model): new no_defect labels start its successor with the same
    parameters; a classifier's success does not use them up, and without an anomaly model nothing starts."""
    from inspections.catalog.services.dataset_import import dataset_import_folder
    from inspections.models import DefectClass, InspectionImage, ModelVersionStatus
    from tests.conftest import TINY_ANOMALY_PARAMS
    from tests.data import good_and_defect_folders
    from tests.factories import AnomalyVersionFactory, TrainingRunFactory

    good_and_defect_folders(tmp_path / "data", good=20, defects=3)
    dataset_import_folder(root=tmp_path / "data")
    reviewer = UserFactory()
    no_defect = DefectClass.objects.get(name="no_defect")
    for image in InspectionImage.objects.filter(label=no_defect)[:4]:
        Review.objects.create(image=image, label=no_defect, previous_label=no_defect, reviewer=reviewer)
    assert training_run_start_if_due(minimum=100, good_minimum=4) is None  # no anomaly model: no anomaly mode

    active = AnomalyVersionFactory(status=ModelVersionStatus.ACTIVE)
    earlier = TrainingRunFactory(kind="anomaly", model_version=active,
                                 parameters={**TINY_ANOMALY_PARAMS, "input_size": 96})
    TrainingRun.objects.filter(pk=earlier.pk).update(created_at=timezone.now() - timedelta(days=1))
    TrainingRunFactory(kind="classifier")  # a classifier's success leaves the good labels to the anomaly model
    assert training_run_start_if_due(minimum=100, good_minimum=5) is None
    run = training_run_start_if_due(minimum=100, good_minimum=4)
    assert run is not None and run.kind == "anomaly" and run.trigger == "schedule"
    assert run.parameters["input_size"] == 96 and run.parameters["false_alarm_rate"] == 0.2
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRunStatus.SUCCEEDED)
    assert training_run_start_if_due(minimum=100, good_minimum=1) is None  # used by that run
