"""GET images/{id}/similar/, GET novelty-groups/ and POST reviews/bulk/: answers, and every
refusal in the API's error shape."""

from __future__ import annotations

import numpy as np
import pytest

from inspections.models import DefectClass, InspectionImage, Review
from inspections.registry.services.model_versions import model_version_promote
from inspections.review.services.similarity import embedding_bytes
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def predicted(version, vector, *, reasons=("foreign",), guessed="crazing") -> InspectionImage:
    image = InspectionImageFactory()
    PredictionFactory(image=image, model_version=version, review_reasons=list(reasons),
                      probabilities={guessed: 0.9, "inclusion": 0.1}, embedding=embedding_bytes(vector))
    return image


@pytest.fixture
def active():
    version = ModelVersionFactory()
    model_version_promote(version=version)
    return version


@pytest.fixture
def two_groups(active, settings):
    """Three foreign look-alikes and two others, far from the first three."""
    settings.STEELQC_NOVELTY_GROUP_RADIUS = 0.5
    rng = np.random.default_rng(5)
    first, second = unit(rng.normal(size=424)), unit(rng.normal(size=424))
    big = [predicted(active, unit(first + 0.01 * rng.normal(size=424)), guessed="patches") for _ in range(3)]
    small = [predicted(active, unit(second + 0.01 * rng.normal(size=424))) for _ in range(2)]
    return big, small


def items(images, version=0):
    return [{"id": image.pk, "label_version": version} for image in images]


# --- images/{id}/similar/ -------------------------------------------------------------------------

def test_similar_lists_the_nearest_images_first_with_their_distance(active):
    base = unit(np.ones(424))
    query = predicted(active, base)
    near = predicted(active, unit(base + 0.02 * np.sin(np.arange(424))))
    far = predicted(active, unit(np.arange(424)))
    response = client_for("viewer").get(f"/api/v1/images/{query.pk}/similar/?limit=5")
    assert response.status_code == 200
    body = response.json()
    assert body["image"] == query.pk and body["model_version"] == active.pk
    assert [r["image"]["id"] for r in body["results"]] == [near.pk, far.pk]
    assert body["results"][0]["distance"] < body["results"][1]["distance"]
    assert body["results"][0]["image"]["file_url"].endswith(f"/api/v1/images/{near.pk}/file/")


def test_similar_returns_at_most_limit_images(active):
    images = [predicted(active, unit(np.arange(424) + i)) for i in range(6)]
    response = client_for("qa").get(f"/api/v1/images/{images[0].pk}/similar/?limit=3")
    assert len(response.json()["results"]) == 3


@pytest.mark.parametrize("limit", ["0", "-1", "many", "101"])
def test_similar_refuses_a_bad_limit(active, limit):
    image = predicted(active, unit(np.ones(424)))
    error = assert_error(client_for("qa").get(f"/api/v1/images/{image.pk}/similar/?limit={limit}"), 400, "invalid")
    assert "limit" in error["details"]


def test_similar_of_an_unknown_image_is_404(active):
    assert_error(client_for("qa").get("/api/v1/images/987654/similar/"), 404, "not_found")


def test_similar_of_an_image_the_active_model_has_not_predicted_is_409(active):
    image = InspectionImageFactory()
    PredictionFactory(image=image, model_version=ModelVersionFactory(), embedding=embedding_bytes(np.ones(424)))
    error = assert_error(client_for("qa").get(f"/api/v1/images/{image.pk}/similar/"), 409, "not_predicted")
    assert error["details"] == {"image": image.pk, "model_version": active.pk}


def test_similar_without_an_active_model_is_409():
    image = InspectionImageFactory()
    assert_error(client_for("qa").get(f"/api/v1/images/{image.pk}/similar/"), 409, "no_active_model")


# --- novelty-groups/ ------------------------------------------------------------------------------

def test_novelty_groups_are_listed_largest_first_with_what_the_model_guessed(two_groups):
    big, small = two_groups
    response = client_for("viewer").get("/api/v1/novelty-groups/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    first, second = body["results"]
    assert first["size"] == 3 and second["size"] == 2
    assert sorted(m["id"] for m in first["images"]) == sorted(i.pk for i in big)
    assert first["predicted_labels"] == {"patches": 3}
    assert set(first["representatives"]) <= {i.pk for i in big} and first["representatives"]
    assert {m["label_version"] for m in second["images"]} == {0}


def test_a_named_group_leaves_the_novelty_groups(two_groups):
    big, _ = two_groups
    client_for("qa").post("/api/v1/reviews/bulk/", {"images": items(big), "label": "no_defect"}, format="json")
    sizes = [g["size"] for g in client_for("qa").get("/api/v1/novelty-groups/").json()["results"]]
    assert sizes == [2]


def test_novelty_groups_without_an_active_model_is_409():
    assert_error(client_for("qa").get("/api/v1/novelty-groups/"), 409, "no_active_model")


def test_novelty_groups_refuse_a_bad_page(two_groups):
    assert_error(client_for("qa").get("/api/v1/novelty-groups/?page=0"), 400, "invalid")


# --- reviews/bulk/ --------------------------------------------------------------------------------

def test_bulk_label_writes_one_review_per_image(two_groups):
    big, _ = two_groups
    response = client_for("qa").post("/api/v1/reviews/bulk/", {"images": items(big), "label": "no_defect"},
                                     format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["decided"] == 3 and body["failed"] == 0
    assert [r["image"] for r in body["results"]] == [i.pk for i in big]
    assert all(r["ok"] and r["label_version"] == 1 and r["review"]["label"] == "no_defect" for r in body["results"])
    assert Review.objects.filter(image__in=big, label__name="no_defect").count() == 3
    assert set(InspectionImage.objects.filter(pk__in=[i.pk for i in big]).values_list("label__name", flat=True)) == {
        "no_defect"}
    assert {str(review.bulk_id) for review in Review.objects.filter(image__in=big)} == {body["bulk_id"]}


def test_bulk_with_a_new_class_created_first_labels_the_group_with_it(two_groups):
    big, _ = two_groups
    client = client_for("qa")
    assert client.post("/api/v1/classes/", {"name": "edge_crack"}, format="json").status_code == 201
    response = client.post("/api/v1/reviews/bulk/", {"images": items(big), "label": "edge_crack"}, format="json")
    assert response.json()["decided"] == 3
    assert InspectionImage.objects.filter(label__name="edge_crack").count() == 3


def test_a_stale_version_fails_only_that_image(two_groups):
    big, _ = two_groups
    other = client_for("ml_admin")
    other.post(f"/api/v1/images/{big[1].pk}/reviews/", {"label": "crazing", "expected_version": 0}, format="json")
    response = client_for("qa").post("/api/v1/reviews/bulk/", {"images": items(big), "label": "patches"},
                                     format="json")
    assert response.status_code == 200
    results = {r["image"]: r for r in response.json()["results"]}
    assert results[big[1].pk]["ok"] is False
    assert results[big[1].pk]["error"]["code"] == "conflict"
    assert results[big[1].pk]["error"]["details"]["label"] == "crazing"
    assert results[big[0].pk]["ok"] and results[big[2].pk]["ok"]
    assert InspectionImage.objects.get(pk=big[1].pk).label.name == "crazing"
    assert response.json()["failed"] == 1


def test_an_unknown_id_fails_only_that_image(two_groups):
    big, _ = two_groups
    body = {"images": [*items(big[:1]), {"id": 987654, "label_version": 0}], "label": "patches"}
    response = client_for("qa").post("/api/v1/reviews/bulk/", body, format="json")
    results = response.json()["results"]
    assert results[0]["ok"] is True
    assert results[1] == {"image": 987654, "ok": False, "error": {
        "code": "not_found", "message": "No image with id 987654.", "details": {}}}


def test_when_no_image_could_be_decided_the_answer_is_409_with_each_reason(two_groups):
    big, _ = two_groups
    response = client_for("qa").post("/api/v1/reviews/bulk/", {"images": items(big, version=7), "label": "patches"},
                                     format="json")
    error = assert_error(response, 409, "no_image_decided")
    assert [r["error"]["code"] for r in error["details"]["results"]] == ["conflict"] * 3
    assert not Review.objects.exists()


def test_bulk_exclude_and_include_again(two_groups):
    big, _ = two_groups
    client = client_for("qa")
    response = client.post("/api/v1/reviews/bulk/", {"images": items(big), "exclude": True, "reason": "test shots"},
                           format="json")
    assert response.json()["decided"] == 3
    assert InspectionImage.objects.filter(pk__in=[i.pk for i in big], excluded=True).count() == 3
    response = client.post("/api/v1/reviews/bulk/", {"images": items(big, version=1), "exclude": False}, format="json")
    assert response.json()["decided"] == 3
    assert not InspectionImage.objects.filter(excluded=True).exists()
    assert Review.objects.filter(image=big[0]).count() == 2


@pytest.mark.parametrize("body, field", [
    ({"images": [], "label": "patches"}, "images"),
    ({"label": "patches"}, "images"),
    ({"images": [{"id": 1}], "label": "patches"}, "images"),
    ({"images": [{"id": 1, "label_version": -1}], "label": "patches"}, "images"),
    ({"images": [{"id": "x", "label_version": 0}], "label": "patches"}, "images"),
    ({"images": [{"id": 1, "label_version": 0}]}, "label"),
    ({"images": [{"id": 1, "label_version": 0}], "label": "patches", "exclude": True, "reason": "x"}, "label"),
    ({"images": [{"id": 1, "label_version": 0}], "exclude": True}, "reason"),
])
def test_bulk_refuses_malformed_requests(two_groups, body, field):
    error = assert_error(client_for("qa").post("/api/v1/reviews/bulk/", body, format="json"), 400, "invalid")
    assert field in error["details"]
    assert not Review.objects.exists()


def test_bulk_refuses_an_image_listed_twice(two_groups):
    big, _ = two_groups
    body = {"images": [*items(big), *items(big[:1])], "label": "patches"}
    error = assert_error(client_for("qa").post("/api/v1/reviews/bulk/", body, format="json"), 400, "invalid")
    assert str(big[0].pk) in error["details"]["images"][0]
    assert not Review.objects.exists()


def test_bulk_refuses_ten_thousand_images_by_count(two_groups):
    body = {"images": [{"id": i, "label_version": 0} for i in range(1, 10_001)], "label": "patches"}
    error = assert_error(client_for("qa").post("/api/v1/reviews/bulk/", body, format="json"), 400, "too_many_images")
    assert error["details"]["limit"] == 1000
    assert "1000" in error["message"] and "10000" in error["message"]
    assert not Review.objects.exists()


def test_bulk_refuses_an_unknown_class_before_deciding_anything(two_groups):
    big, _ = two_groups
    error = assert_error(client_for("qa").post("/api/v1/reviews/bulk/", {"images": items(big), "label": "nope"},
                                               format="json"), 400, "unknown_class")
    assert "patches" in error["details"]["classes"]
    assert not Review.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "integrator"])
def test_bulk_by_a_role_that_cannot_label_writes_nothing(two_groups, role):
    big, _ = two_groups
    response = client_for(role).post("/api/v1/reviews/bulk/", {"images": items(big), "label": "patches"},
                                     format="json")
    assert_error(response, 403, "permission_denied")
    assert not Review.objects.exists()
    assert DefectClass.objects.filter(name="patches").exists()


# --- reviews/bulk/{bulk_id}/undo/ -------------------------------------------------------------------

def test_bulk_undo_takes_back_each_image_on_its_own(two_groups):
    big, _ = two_groups
    qa = client_for("qa")
    decided = qa.post("/api/v1/reviews/bulk/", {"images": items(big), "label": "no_defect"}, format="json").json()
    first, second, third = decided["results"]
    # One image decided again since, one undone on its own: the bulk undo takes back the third only.
    qa.post(f"/api/v1/images/{first['image']}/reviews/", {"label": "patches", "expected_version": 1}, format="json")
    assert qa.post(f"/api/v1/reviews/{second['review']['id']}/undo/", format="json").status_code == 201
    response = qa.post(f"/api/v1/reviews/bulk/{decided['bulk_id']}/undo/", format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["decided"], body["failed"], body["bulk_id"]) == (1, 2, decided["bulk_id"])
    assert [r.get("error", {}).get("code") for r in body["results"]] == ["decided_since", "already_undone", None]
    assert body["results"][2]["review"]["undoes"] == third["review"]["id"]
    labels = dict(InspectionImage.objects.filter(pk__in=[i.pk for i in big]).values_list("pk", "label__name"))
    assert labels == {first["image"]: "patches", second["image"]: None, third["image"]: None}
    # Nothing left to take back.
    error = assert_error(qa.post(f"/api/v1/reviews/bulk/{decided['bulk_id']}/undo/", format="json"), 409,
                         "no_image_decided")
    assert [r["error"]["code"] for r in error["details"]["results"]] == ["decided_since", "already_undone",
                                                                        "already_undone"]


def test_bulk_undo_by_someone_else_or_of_nothing_is_refused(two_groups):
    big, _ = two_groups
    decided = client_for("qa").post("/api/v1/reviews/bulk/", {"images": items(big), "label": "no_defect"},
                                    format="json").json()
    assert_error(client_for("qa").post(f"/api/v1/reviews/bulk/{decided['bulk_id']}/undo/", format="json"), 403,
                 "permission_denied")
    assert_error(client_for("qa").post("/api/v1/reviews/bulk/0b9f6a53-3c1e-4b8e-8d0f-1a2b3c4d5e6f/undo/",
                                       format="json"), 404, "not_found")
    assert not Review.objects.filter(decision="undo").exists()
