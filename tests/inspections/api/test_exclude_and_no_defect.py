"""Two decisions besides a defect class: the no_defect class, and excluding an image as not an
inspection image (POST images/{id}/reviews/ {"exclude": true, "reason": ...}; undone by another review)."""

from __future__ import annotations

import pytest

from inspections.models import DefectClass, InspectionImage, Review
from inspections.registry.services.training import training_run_start
from inspections.review import selectors as review_selectors
from tests.factories import InspectionImageFactory, PredictionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def qa():
    return client_for("qa")


def _decide(client, image, **body):
    if "expected_version" not in body:
        body["force"] = True  # these tests are about exclusion; the version check has its own tests
    return client.post(f"/api/v1/images/{image.pk}/reviews/", body, format="json")


def _labelled(name="crazing", **fields):
    fields.setdefault("split", "train")
    return InspectionImageFactory(label=DefectClass.objects.get(name=name), label_source="import", **fields)


def _queue_ids() -> set[int]:
    return set(review_selectors.image_list_for_review().values_list("id", flat=True))


def test_no_defect_is_a_class_from_the_migrations_and_a_label_like_any_other(qa):
    assert DefectClass.objects.get(name="no_defect").active
    assert "no_defect" in {row["name"] for row in client_for("viewer").get("/api/v1/classes/").json()}
    image = InspectionImageFactory()
    response = _decide(qa, image, label="no_defect", expected_version=0)
    assert response.status_code == 201, response.content
    assert response.json()["image"]["label"] == "no_defect"


def test_exclude_keeps_the_label_and_history_and_records_the_reason(qa):
    image = _labelled()
    PredictionFactory(image=image)
    response = _decide(qa, image, exclude=True, reason="camera fault", expected_version=0)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["review"]["decision"], body["review"]["label"], body["review"]["reason"]) == ("exclude", None, "camera fault")
    assert (body["image"]["excluded"], body["image"]["exclusion_reason"]) == (True, "camera fault")
    assert (body["image"]["label"], body["image"]["label_version"]) == ("crazing", 1)
    assert Review.objects.filter(image=image).count() == 1


def test_an_excluded_image_leaves_the_queue_and_undoing_brings_it_back(qa):
    image = _labelled()
    assert image.pk in _queue_ids()
    assert _decide(qa, image, exclude=True, reason="test shot").status_code == 201
    assert image.pk not in _queue_ids()
    response = _decide(qa, image, exclude=False, expected_version=1)
    assert response.status_code == 201, response.content
    assert response.json()["review"]["decision"] == "include"
    assert response.json()["image"]["excluded"] is False
    image.refresh_from_db()
    assert (image.excluded, image.label.name, image.label_version) == (False, "crazing", 2)
    assert image.pk in _queue_ids()
    assert list(Review.objects.filter(image=image).order_by("id").values_list("decision", flat=True)) == ["exclude", "include"]


def test_labelling_an_excluded_image_includes_it_again(qa):
    image = _labelled()
    _decide(qa, image, exclude=True, reason="wrong material")
    body = _decide(qa, image, label="patches").json()
    assert (body["image"]["excluded"], body["image"]["label"]) == (False, "patches")


def test_an_excluded_image_never_enters_a_training_snapshot(qa, no_queue, settings):
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 0  # one or two images a class
    kept = [_labelled("crazing"), _labelled("inclusion", split="val"), _labelled("inclusion"), _labelled("crazing", split="val")]
    excluded = _labelled("crazing", split="test")
    _decide(qa, excluded, exclude=True, reason="camera fault")
    run = training_run_start(requested_by=None)
    frozen = set(run.snapshot.items.values_list("image_id", flat=True))
    assert frozen == {image.pk for image in kept}


def test_the_api_list_filters_by_exclusion(qa):
    image, other = _labelled(), _labelled()
    _decide(qa, image, exclude=True, reason="test shot")
    rows = client_for("viewer").get("/api/v1/images/?excluded=true").json()["results"]
    assert [row["id"] for row in rows] == [image.pk]
    rows = client_for("viewer").get("/api/v1/images/?excluded=false").json()["results"]
    assert [row["id"] for row in rows] == [other.pk]


@pytest.mark.parametrize("body, field", [
    ({"exclude": True}, "reason"),
    ({"exclude": True, "reason": "   "}, "reason"),
    ({"exclude": True, "reason": "x" * 501}, "reason"),
    ({"exclude": "maybe", "reason": "x"}, "exclude"),
    ({"exclude": True, "reason": "camera fault", "label": "crazing"}, "label"),
    ({}, "label"),
])
def test_malformed_exclusion_is_400_and_writes_nothing(qa, body, field):
    image = _labelled()
    error = assert_error(_decide(qa, image, **body), 400, "invalid")
    assert field in error["details"]
    assert not Review.objects.exists()
    assert not InspectionImage.objects.get(pk=image.pk).excluded


def test_excluding_twice_or_including_an_included_image_is_409(qa):
    image = _labelled()
    assert_error(_decide(qa, image, exclude=False), 409, "not_excluded")
    _decide(qa, image, exclude=True, reason="test shot")
    error = assert_error(_decide(qa, image, exclude=True, reason="again"), 409, "already_excluded")
    assert error["details"]["excluded"] is True
    assert Review.objects.count() == 1


def test_a_stale_version_refuses_the_exclusion_with_the_current_state(qa):
    image = _labelled()
    _decide(qa, image, label="patches")
    error = assert_error(_decide(qa, image, exclude=True, reason="camera fault", expected_version=0), 409, "conflict")
    assert (error["details"]["label"], error["details"]["label_version"]) == ("patches", 1)
    assert not InspectionImage.objects.get(pk=image.pk).excluded


def test_excluding_an_unknown_image_is_404(qa):
    assert_error(qa.post("/api/v1/images/987654321/reviews/", {"exclude": True, "reason": "x"}, format="json"),
                 404, "not_found")


@pytest.mark.parametrize("role", ["viewer", "integrator"])
def test_roles_that_do_not_label_cannot_exclude(role):
    image = _labelled()
    assert_error(_decide(client_for(role), image, exclude=True, reason="camera fault"), 403)
    assert not InspectionImage.objects.get(pk=image.pk).excluded
