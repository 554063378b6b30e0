"""Classes go live when they are ready: the counts, the statuses, the class list's fields, and
what a training run's snapshot keeps out."""

from __future__ import annotations

import pytest

from inspections.catalog.selectors import class_image_counts, class_readiness_list
from inspections.errors import ApplicationError
from inspections.models import DefectClass, Split, TrainingRun
from inspections.registry.services.training import _snapshot_freeze, training_run_start
from mlcore.readiness import ClassImages
from tests.factories import DefectClassFactory, InspectionImageFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


def _labelled(name: str, *, train: int = 0, val: int = 0, test: int = 0, **fields) -> DefectClass:
    defect_class = DefectClassFactory(name=name)
    for split, n in ((Split.TRAIN, train), (Split.VAL, val), (Split.TEST, test)):
        InspectionImageFactory.create_batch(n, label=defect_class, split=split, **fields)
    return defect_class


@pytest.fixture
def small_rule(settings):
    """A rule small enough to build with a few factory images: 4 training and 2 test images."""
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES = 4
    settings.STEELQC_CLASS_MIN_TEST_IMAGES = 2


def test_counts_are_labelled_images_per_split_without_excluded_or_unassigned_ones():
    _labelled("crazing", train=3, val=1, test=2)
    _labelled("crazing", train=2, test=1, excluded=True)
    InspectionImageFactory.create_batch(2, label=DefectClass.objects.get(name="crazing"), split=Split.UNASSIGNED)
    InspectionImageFactory.create_batch(2, split=Split.TRAIN)  # no label
    assert class_image_counts(class_names=["crazing", "patches"]) == {
        "crazing": ClassImages(train=3, val=1, test=2), "patches": ClassImages(train=0, val=0, test=0)}


def test_a_class_with_both_minimums_is_active_and_one_short_of_test_is_collecting(small_rule):
    _labelled("crazing", train=4, val=1, test=2)
    _labelled("inclusion", train=6, val=1, test=1)
    readiness = class_readiness_list()
    assert (readiness["crazing"].status, readiness["crazing"].images_needed) == ("active", 0)
    assert readiness["inclusion"].status == "collecting" and readiness["inclusion"].images_needed >= 1
    assert (readiness["inclusion"].train_images, readiness["inclusion"].test_images) == (6, 1)


def test_the_default_rule_is_twenty_training_and_five_test_images_and_a_new_class_needs_32():
    _labelled("crazing", train=20, test=4)
    readiness = class_readiness_list()
    assert readiness["crazing"].status == "collecting"
    assert readiness["patches"].images_needed == 32  # no images yet, default 70/15/15 split


def test_only_active_classes_are_listed_and_no_defect_is_a_class_like_any_other():
    DefectClass.objects.create(name="old_dent", active=False)
    readiness = class_readiness_list()
    assert "old_dent" not in readiness
    assert readiness["no_defect"].status == "collecting"


def test_the_class_list_carries_status_and_images_needed(small_rule):
    _labelled("crazing", train=4, val=1, test=2)
    _labelled("inclusion", train=1)
    by_name = {c["name"]: c for c in client_for("viewer").get("/api/v1/classes/").json()}
    assert (by_name["crazing"]["status"], by_name["crazing"]["images_needed"]) == ("active", 0)
    assert by_name["inclusion"]["status"] == "collecting"
    assert by_name["inclusion"]["images_needed"] == class_readiness_list()["inclusion"].images_needed > 0


def test_a_new_class_answers_collecting_with_what_it_needs():
    body = client_for("qa").post("/api/v1/classes/", {"name": "edge_crack"}, format="json").json()
    assert (body["status"], body["images_needed"]) == ("collecting", 32)


def test_a_run_leaves_the_images_of_a_collecting_class_out_and_says_why(small_rule, no_queue):
    _labelled("crazing", train=4, val=1, test=2)
    _labelled("inclusion", train=5, val=1, test=2)
    _labelled("no_defect", train=3, val=1, test=2)
    run = training_run_start(requested_by=None)
    assert set(run.snapshot.items.values_list("label__name", flat=True)) == {"crazing", "inclusion"}
    assert set(run.snapshot.counts) == {"crazing", "inclusion"} and run.snapshot.image_count == 15
    left_out = run.parameters["left_out_classes"]
    assert list(left_out) == ["no_defect"]
    assert left_out["no_defect"]["train_images"] == 3 and left_out["no_defect"]["images_needed"] >= 1
    assert "no_defect: collecting (3 training and 2 test images" in run.log


def test_a_run_with_every_class_ready_records_nothing_left_out(small_rule, no_queue):
    _labelled("crazing", train=4, val=1, test=2)
    _labelled("inclusion", train=4, val=1, test=2)
    snapshot, left_out = _snapshot_freeze()
    assert left_out == {} and snapshot.image_count == 14
    assert "left_out_classes" not in training_run_start(requested_by=None).parameters


def test_a_run_with_fewer_than_two_ready_classes_is_refused_naming_what_the_others_need(small_rule, no_queue):
    _labelled("crazing", train=4, val=1, test=2)
    _labelled("inclusion", train=3, val=1, test=2)
    with pytest.raises(ApplicationError) as error:
        training_run_start(requested_by=None)
    assert error.value.code == "not_enough_data"
    assert "at least two classes ready to train; 1 is ready (crazing)" in error.value.message
    assert "inclusion: collecting" in error.value.message
    assert set(error.value.details["collecting"]) == {"inclusion"}
    assert not TrainingRun.objects.exists()


def test_lower_settings_let_a_small_class_in(settings, no_queue):
    _labelled("crazing", train=2, val=1, test=1)
    _labelled("inclusion", train=2, val=1, test=1)
    with pytest.raises(ApplicationError):
        training_run_start(requested_by=None)
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES = settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1
    assert training_run_start(requested_by=None).snapshot.image_count == 8
