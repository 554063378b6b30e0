"""review_submit: append-only decisions, optimistic concurrency, class checks, splits."""

from __future__ import annotations

import pytest

from inspections.api.exceptions import http_status
from inspections.errors import ApplicationError
from inspections.models import DefectClass, InspectionImage, Review
from inspections.review.services.reviews import review_submit
from tests.factories import InspectionImageFactory, PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def qa():
    return UserFactory(roles=["qa"])


def _class(name: str) -> DefectClass:
    return DefectClass.objects.get(name=name)


def test_review_records_previous_label_and_answered_prediction(qa):
    image = InspectionImageFactory(label=_class("crazing"), label_source="import", split="train")
    PredictionFactory(image=image)
    latest = PredictionFactory(image=image)
    review = review_submit(image=image, label_name="patches", reviewer=qa)
    assert (review.label.name, review.previous_label.name, review.reviewer, review.prediction) == (
        "patches", "crazing", qa, latest)
    image.refresh_from_db()
    assert (image.label.name, image.label_source, image.label_version) == ("patches", "review", 1)


def test_reviews_are_appended_never_rewritten(qa):
    image = InspectionImageFactory()
    first = review_submit(image=image, label_name="crazing", reviewer=qa)
    second = review_submit(image=image, label_name="scratches", reviewer=UserFactory(roles=["ml_admin"]))
    first_again = Review.objects.get(pk=first.pk)
    assert (first_again.label.name, first_again.previous_label) == ("crazing", None)
    assert second.previous_label.name == "crazing"
    assert Review.objects.filter(image=image).count() == 2
    image.refresh_from_db()
    assert (image.label.name, image.label_version) == ("scratches", 2)


def test_confirming_counts_as_a_decision(qa):
    image = InspectionImageFactory(label=_class("inclusion"), label_source="import", label_version=3, split="val")
    review = review_submit(image=image, label_name="inclusion", reviewer=qa, expected_version=3)
    image.refresh_from_db()
    assert review.previous_label == review.label
    assert (image.label_source, image.label_version) == ("review", 4)


def test_stale_expected_version_is_409_with_current_state_and_writes_nothing(qa):
    image = InspectionImageFactory(label=_class("crazing"), label_source="review", label_version=5, split="train")
    with pytest.raises(ApplicationError) as raised:
        review_submit(image=image, label_name="patches", reviewer=qa, expected_version=4)
    error = raised.value
    assert (error.code, http_status(error)) == ("conflict", 409)
    assert error.details == {"image": image.pk, "label": "crazing", "label_source": "review", "label_version": 5,
                             "excluded": False, "expected_version": 4}
    assert not Review.objects.exists()
    image.refresh_from_db()
    assert (image.label.name, image.label_version) == ("crazing", 5)


def test_matching_expected_version_is_accepted(qa):
    image = InspectionImageFactory(label_version=0)
    review_submit(image=image, label_name="patches", reviewer=qa, expected_version=0)
    image.refresh_from_db()
    assert image.label_version == 1


@pytest.mark.parametrize("name", ["no_such_class", "", "retired"])
def test_unknown_or_inactive_class_is_400(qa, name):
    DefectClass.objects.create(name="retired", active=False)
    image = InspectionImageFactory()
    with pytest.raises(ApplicationError) as raised:
        review_submit(image=image, label_name=name, reviewer=qa)
    assert (raised.value.code, http_status(raised.value)) == ("unknown_class", 400)
    assert "retired" not in raised.value.details["classes"] and "crazing" in raised.value.details["classes"]
    assert not Review.objects.exists()


def test_class_names_are_normalised_like_everywhere_else(qa):
    image = InspectionImageFactory()
    review = review_submit(image=image, label_name="  Pitted Surface ", reviewer=qa)
    assert review.label.name == "pitted_surface"


def test_a_newly_labelled_image_gets_a_split_once(qa):
    image = InspectionImageFactory(split="unassigned")
    review_submit(image=image, label_name="crazing", reviewer=qa)
    image.refresh_from_db()
    assert image.split in {"train", "val", "test"}
    assigned = image.split
    review_submit(image=image, label_name="patches", reviewer=qa)
    image.refresh_from_db()
    assert image.split == assigned


def test_the_callers_image_object_follows_the_new_label(qa):
    image = InspectionImageFactory()
    review_submit(image=image, label_name="crazing", reviewer=qa)
    assert (image.label.name, image.label_version, image.label_source) == ("crazing", 1, "review")


@pytest.mark.parametrize("role", ["viewer", "integrator", None])
def test_only_labelling_roles_may_review(role):
    image = InspectionImageFactory()
    reviewer = UserFactory(roles=[role] if role else [])
    with pytest.raises(ApplicationError) as raised:
        review_submit(image=image, label_name="crazing", reviewer=reviewer)
    assert http_status(raised.value) == 403
    assert not Review.objects.exists()
    assert InspectionImage.objects.get(pk=image.pk).label is None
