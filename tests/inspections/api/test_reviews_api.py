"""POST images/{id}/reviews/ and GET images/{id}/reviews/."""

from __future__ import annotations

import pytest

from inspections.models import DefectClass, Review
from tests.factories import InspectionImageFactory, PredictionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def qa():
    return client_for("qa")


def _review(client, image, **body):
    return client.post(f"/api/v1/images/{image.pk}/reviews/", body, format="json")


def test_review_answers_201_with_the_review_and_the_new_image_state(qa):
    image = InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import", split="test")
    prediction = PredictionFactory(image=image)
    response = _review(qa, image, label="patches", expected_version=0)
    assert response.status_code == 201, response.content
    body = response.json()
    review = Review.objects.get()
    assert body["review"]["id"] == review.pk
    assert (body["review"]["label"], body["review"]["previous_label"]) == ("patches", "crazing")
    assert body["review"]["prediction"] == prediction.pk
    assert body["review"]["reviewer"] == qa.user.username
    assert (body["image"]["label"], body["image"]["label_version"], body["image"]["label_source"]) == ("patches", 1, "review")
    assert [r["id"] for r in body["image"]["reviews"]] == [review.pk]


def test_stale_expected_version_is_409_with_the_current_state(qa):
    image = InspectionImageFactory(split="train")
    assert _review(qa, image, label="crazing", expected_version=0).status_code == 201
    error = assert_error(_review(client_for("ml_admin"), image, label="patches", expected_version=0), 409, "conflict")
    assert (error["details"]["label"], error["details"]["label_version"]) == ("crazing", 1)
    assert Review.objects.count() == 1


def test_without_expected_version_a_decision_is_refused_and_says_how_to_send_one(qa):
    image = InspectionImageFactory(split="train")
    error = assert_error(_review(qa, image, label="crazing"), 400, "expected_version_required")
    assert "expected_version" in error["message"] and '"force": true' in error["message"]
    image.refresh_from_db()
    assert image.label is None and not Review.objects.exists()


def test_force_lets_a_decision_overwrite_without_expected_version(qa):
    image = InspectionImageFactory(split="train")
    _review(qa, image, label="crazing", expected_version=0)
    assert _review(qa, image, label="patches", force=True).json()["image"]["label"] == "patches"
    assert Review.objects.count() == 2


def test_unknown_class_is_400(qa):
    image = InspectionImageFactory()
    error = assert_error(_review(qa, image, label="wobble", expected_version=0), 400, "unknown_class")
    assert "crazing" in error["details"]["classes"]
    assert not Review.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({}, "label"),
    ({"label": ""}, "label"),
    ({"label": "crazing", "expected_version": "one"}, "expected_version"),
    ({"label": "crazing", "expected_version": -1}, "expected_version"),
])
def test_malformed_review_is_400_naming_the_field(qa, body, field):
    image = InspectionImageFactory()
    error = assert_error(qa.post(f"/api/v1/images/{image.pk}/reviews/", body, format="json"), 400, "invalid")
    assert field in error["details"]


def test_review_of_unknown_image_is_404(qa):
    assert_error(qa.post("/api/v1/images/987654321/reviews/", {"label": "crazing"}, format="json"), 404, "not_found")


def test_review_list_is_the_history_newest_first(qa):
    image = InspectionImageFactory(split="train")
    for version, label in enumerate(("crazing", "patches", "scratches")):
        _review(qa, image, label=label, expected_version=version)
    body = client_for("viewer").get(f"/api/v1/images/{image.pk}/reviews/").json()
    assert body["count"] == 3
    assert [(r["label"], r["previous_label"]) for r in body["results"]] == [
        ("scratches", "patches"), ("patches", "crazing"), ("crazing", None)]


# --- undo ----------------------------------------------------------------------------------------

def _undo(client, review_id):
    return client.post(f"/api/v1/reviews/{review_id}/undo/", format="json")


def test_undo_returns_the_image_to_the_state_the_decision_found(qa):
    image = InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import", split="test")
    decided = _review(qa, image, label="patches", expected_version=0).json()["review"]
    response = _undo(qa, decided["id"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["review"]["decision"], body["review"]["undoes"], body["review"]["label"]) == ("undo", decided["id"], "crazing")
    assert (body["image"]["label"], body["image"]["label_source"], body["image"]["label_version"]) == ("crazing", "import", 2)
    assert [r["decision"] for r in _review_list(qa, image)] == ["undo", "label"]
    # A decision is taken back once; an undo is not undone (decide the image again instead).
    assert assert_error(_undo(qa, decided["id"]), 409, "already_undone")
    assert assert_error(_undo(qa, body["review"]["id"]), 409, "invalid")
    assert Review.objects.count() == 2


def test_undo_after_the_image_was_decided_again_is_409_and_changes_nothing(qa):
    image = InspectionImageFactory(split="train")
    first = _review(qa, image, label="crazing", expected_version=0).json()["review"]
    _review(qa, image, label="patches", expected_version=1)
    error = assert_error(_undo(qa, first["id"]), 409, "decided_since")
    assert (error["details"]["label"], error["details"]["label_version"]) == ("patches", 2)
    image.refresh_from_db()
    assert (image.label.name, Review.objects.count()) == ("patches", 2)


def test_only_the_decider_or_an_ml_admin_may_undo(qa):
    image = InspectionImageFactory(split="train")
    decided = _review(qa, image, label="crazing", expected_version=0).json()["review"]
    assert_error(_undo(client_for("qa"), decided["id"]), 403, "permission_denied")
    assert assert_error(_undo(client_for("viewer"), decided["id"]), 403, "permission_denied")
    assert Review.objects.count() == 1
    assert _undo(client_for("ml_admin"), decided["id"]).status_code == 201
    image.refresh_from_db()
    assert image.label is None and image.label_version == 2


def test_undo_of_an_unknown_review_is_404(qa):
    assert_error(_undo(qa, 987654321), 404, "not_found")


def _review_list(client, image):
    return client.get(f"/api/v1/images/{image.pk}/reviews/").json()["results"]
