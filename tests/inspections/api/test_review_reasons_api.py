"""Why an image needs a person: review_reasons and ood_score in the prediction JSON, and
GET images/?review_reason=CODE."""

from __future__ import annotations

import pytest

from inspections.models import DefectClass, Prediction
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:400]
    return {row["id"] for row in response.json()["results"]}


def _flagged(reasons, probabilities=None, **fields):
    return PredictionFactory(review_reasons=reasons, needs_review=bool(reasons),
                             probabilities=probabilities or {"crazing": 0.5, "patches": 0.45, "inclusion": 0.05},
                             **fields)


def test_prediction_json_carries_reasons_their_words_and_the_ood_score():
    prediction = _flagged(["foreign", "low_confidence"], ood_score=3.25)
    body = client_for("viewer").get(f"/api/v1/images/{prediction.image_id}/").json()["prediction"]
    assert body["review_reasons"] == ["foreign", "low_confidence"]
    assert body["ood_score"] == 3.25
    assert body["review_explanation"] == [
        {"code": "foreign", "text": "Unlike anything the model was trained on. A new kind of defect, another "
                                    "surface, or not an inspection frame at all (a document, a photo: exclude it)."},
        {"code": "low_confidence", "text": "The model hesitates between crazing and patches."},
    ]


def test_an_auto_accepted_prediction_has_no_reasons():
    prediction = PredictionFactory(probabilities={"crazing": 0.97, "patches": 0.03})
    row = client_for("viewer").get("/api/v1/images/").json()["results"][0]
    assert row["id"] == prediction.image_id
    assert row["prediction"]["review_reasons"] == [] and row["prediction"]["review_explanation"] == []


def test_review_reason_filter_keeps_images_whose_latest_prediction_has_that_reason():
    foreign = _flagged(["foreign"]).image
    both = _flagged(["foreign", "low_confidence"]).image
    hesitant = _flagged(["low_confidence"]).image
    blank = _flagged(["blank_frame"]).image
    _flagged([])
    viewer = client_for("viewer")
    assert _ids(viewer.get("/api/v1/images/?review_reason=foreign")) == {foreign.pk, both.pk}
    assert _ids(viewer.get("/api/v1/images/?review_reason=low_confidence")) == {both.pk, hesitant.pk}
    assert _ids(viewer.get("/api/v1/images/?review_reason=blank_frame")) == {blank.pk}


def test_review_reason_filter_looks_at_the_latest_prediction_only():
    image = InspectionImageFactory(status="predicted")
    _flagged(["foreign"], image=image, model_version=ModelVersionFactory())
    Prediction.objects.create(image=image, model_version=ModelVersionFactory(), confidence=0.99,
                              label=DefectClass.objects.get(name="crazing"), probabilities={"crazing": 0.99},
                              needs_review=False, ood_score=0.1, review_reasons=[])
    images_latest_prediction_refresh(image_ids=[image.pk])
    assert _ids(client_for("viewer").get("/api/v1/images/?review_reason=foreign")) == set()


def test_an_unknown_review_reason_is_refused_in_the_error_shape():
    error = assert_error(client_for("viewer").get("/api/v1/images/?review_reason=sunset"), 400, "invalid")
    assert "review_reason" in error["details"]


def test_review_reason_given_twice_is_refused():
    error = assert_error(client_for("viewer").get("/api/v1/images/?review_reason=foreign&review_reason=blank_frame"),
                         400, "invalid")
    assert "review_reason" in error["details"]


def test_review_reason_filter_needs_authentication():
    assert client_for(None).get("/api/v1/images/?review_reason=foreign").status_code in (401, 403)
