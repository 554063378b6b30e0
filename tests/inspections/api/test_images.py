"""GET images/ (filters, pagination), GET images/{id}/ and GET images/{id}/file/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inspections.models import DefectClass, InspectionImage, Review
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory, UserFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:400]
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def viewer():
    return client_for("viewer")


@pytest.fixture
def crazing():
    return DefectClass.objects.get(name="crazing")


def test_list_shows_the_latest_prediction_of_each_image(viewer):
    image = InspectionImageFactory(status="predicted")
    PredictionFactory(image=image, probabilities={"crazing": 0.6, "patches": 0.4})
    latest = PredictionFactory(image=image, probabilities={"crazing": 0.1, "patches": 0.9})
    row = viewer.get("/api/v1/images/").json()["results"][0]
    assert row["id"] == image.pk
    assert row["prediction"]["id"] == latest.pk
    assert row["prediction"]["label"] == "patches"
    assert row["prediction"]["probabilities"] == {"crazing": 0.1, "patches": 0.9}


@pytest.mark.parametrize("field, value, matching, other", [
    ("status", "predicted", {"status": "predicted"}, {"status": "pending"}),
    ("split", "test", {"split": "test"}, {"split": "train"}),
    ("source", "line-3", {"source": "line-3"}, {"source": "line-4"}),
    ("external_id", "coil-77", {"external_id": "coil-77"}, {"external_id": "coil-78"}),
])
def test_exact_filters(viewer, field, value, matching, other):
    wanted, unwanted = InspectionImageFactory(**matching), InspectionImageFactory(**other)
    ids = _ids(viewer.get("/api/v1/images/", {field: value}))
    assert wanted.pk in ids and unwanted.pk not in ids


def test_label_filter_and_unlabelled(viewer, crazing):
    labelled = InspectionImageFactory(label=crazing, label_source="review")
    unlabelled = InspectionImageFactory()
    assert _ids(viewer.get("/api/v1/images/?label=crazing")) == {labelled.pk}
    assert _ids(viewer.get("/api/v1/images/?label=")) == {unlabelled.pk}


def test_needs_review_filter_follows_the_latest_prediction(viewer):
    flagged, cleared, never = InspectionImageFactory(), InspectionImageFactory(), InspectionImageFactory()
    PredictionFactory(image=flagged, needs_review=True)
    PredictionFactory(image=cleared, needs_review=True)
    PredictionFactory(image=cleared, needs_review=False)
    assert _ids(viewer.get("/api/v1/images/?needs_review=true")) == {flagged.pk}
    assert _ids(viewer.get("/api/v1/images/?needs_review=false")) == {cleared.pk}
    assert never.pk not in _ids(viewer.get("/api/v1/images/?needs_review=false"))


def test_model_version_filter(viewer):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    by_first, by_second = InspectionImageFactory(), InspectionImageFactory()
    PredictionFactory(image=by_first, model_version=first)
    PredictionFactory(image=by_second, model_version=second)
    assert _ids(viewer.get(f"/api/v1/images/?model_version={first.pk}")) == {by_first.pk}


def test_model_version_filter_means_the_version_of_the_latest_prediction(viewer):
    older, newer = ModelVersionFactory(), ModelVersionFactory()
    repredicted = InspectionImageFactory()
    PredictionFactory(image=repredicted, model_version=older)
    PredictionFactory(image=repredicted, model_version=newer)
    assert _ids(viewer.get(f"/api/v1/images/?model_version={older.pk}")) == set()
    assert _ids(viewer.get(f"/api/v1/images/?model_version={newer.pk}")) == {repredicted.pk}


def test_created_range_filters(viewer):
    old, new = InspectionImageFactory(), InspectionImageFactory()
    InspectionImage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    cut = (timezone.now() - timedelta(days=1)).isoformat()
    assert _ids(viewer.get("/api/v1/images/", {"created_after": cut})) == {new.pk}
    assert _ids(viewer.get("/api/v1/images/", {"created_before": cut})) == {old.pk}


@pytest.mark.parametrize("query, field", [
    ("status=shiny", "status"),
    ("split=holdout", "split"),
    ("needs_review=maybe", "needs_review"),
    ("model_version=abc", "model_version"),
    ("model_version=424242", "model_version"),
    ("label=no_such_class", "label"),
    ("created_after=yesterday", "created_after"),
    ("created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z", "created_before"),
    ("status=pending&status=failed", "status"),
    ("page=0", "page"),
    ("page=two", "page"),
    ("page_size=0", "page_size"),
    ("page_size=100000", "page_size"),
])
def test_bad_query_values_are_400_naming_the_parameter(viewer, query, field):
    error = assert_error(viewer.get(f"/api/v1/images/?{query}"), 400, "invalid")
    assert field in error["details"]


def test_pagination_pages_through_everything_once(viewer):
    created = {image.pk for image in InspectionImageFactory.create_batch(5)}
    first = viewer.get("/api/v1/images/?page_size=2").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    seen, url = [], "/api/v1/images/?page_size=2"
    while url:
        body = viewer.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert sorted(seen) == sorted(created)
    assert seen == sorted(seen, reverse=True)  # newest first


def test_page_size_is_bounded_by_default(viewer, settings):
    settings.STEELQC_API_PAGE_SIZE = 3
    InspectionImageFactory.create_batch(4)
    assert len(viewer.get("/api/v1/images/").json()["results"]) == 3


def test_page_past_the_end_is_404(viewer):
    InspectionImageFactory()
    assert_error(viewer.get("/api/v1/images/?page=5"), 404, "not_found")


def test_detail_has_prediction_with_all_probabilities_label_and_review_history(viewer, crazing):
    image = InspectionImageFactory(label=crazing, label_source="review", label_version=2, status="predicted")
    probabilities = {"crazing": 0.5, "inclusion": 0.3, "patches": 0.2}
    prediction = PredictionFactory(image=image, probabilities=probabilities, needs_review=True)
    reviewer = UserFactory(roles=["qa"])
    first = Review.objects.create(image=image, label=DefectClass.objects.get(name="patches"), reviewer=reviewer)
    second = Review.objects.create(image=image, label=crazing, previous_label=first.label, reviewer=reviewer,
                                   prediction=prediction)
    body = viewer.get(f"/api/v1/images/{image.pk}/").json()
    assert body["label"] == "crazing" and body["label_source"] == "review" and body["label_version"] == 2
    assert body["prediction"]["probabilities"] == probabilities
    assert body["prediction"]["needs_review"] is True
    assert body["prediction"]["model_version"] == prediction.model_version_id
    assert [r["id"] for r in body["reviews"]] == [second.pk, first.pk]
    assert body["reviews"][0] == {
        "id": second.pk, "image": image.pk, "decision": "label", "label": "crazing", "previous_label": "patches",
        "reason": "", "bulk_id": None, "undoes": None,
        "reviewer": reviewer.username, "prediction": prediction.pk, "created_at": body["reviews"][0]["created_at"],
    }
    assert body["file_url"].endswith(f"/api/v1/images/{image.pk}/file/")


def test_image_without_prediction_shows_null(viewer):
    image = InspectionImageFactory()
    assert viewer.get(f"/api/v1/images/{image.pk}/").json()["prediction"] is None


def test_file_endpoint_returns_the_stored_bytes(viewer):
    image = InspectionImageFactory()
    response = viewer.get(f"/api/v1/images/{image.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image.file.open("rb")
    assert b"".join(response.streaming_content) == image.file.read()


def test_file_endpoint_serves_clients_asking_for_images(viewer):
    image = InspectionImageFactory()
    response = viewer.get(f"/api/v1/images/{image.pk}/file/", HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_file_endpoint_needs_a_role():
    image = InspectionImageFactory()
    assert client_for(None).get(f"/api/v1/images/{image.pk}/file/").status_code == 401


def test_file_missing_from_storage_is_404(viewer):
    image = InspectionImageFactory()
    image.file.storage.delete(image.file.name)
    assert_error(viewer.get(f"/api/v1/images/{image.pk}/file/"), 404, "not_found")


def test_list_query_count_does_not_grow_with_the_page(viewer, django_assert_max_num_queries):
    for image in InspectionImageFactory.create_batch(6):
        PredictionFactory(image=image)
    with django_assert_max_num_queries(8):
        assert len(viewer.get("/api/v1/images/").json()["results"]) == 6
