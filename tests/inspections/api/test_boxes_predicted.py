"""The boxes the active model version found: shown beside the image's boxes as ``predicted``,
accepted by an ``add`` that names ``from_model`` (stored as a model box the person accepted,
with the version in the history); accepting what the model did not find is refused."""

from __future__ import annotations

import pytest

from inspections.models import BoxSource, DefectBox, DefectBoxChange, DefectClass, ModelVersionStatus, Prediction
from tests.factories import InspectionImageFactory, ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

FOUND = [{"label": "inclusion", "box": [0.1, 0.2, 0.5, 0.6], "score": 0.91},
         {"label": "scratches", "box": [0.6, 0.0, 0.9, 1.0], "score": 0.42}]


@pytest.fixture
def image():
    for name in ("inclusion", "scratches", "crazing"):
        DefectClass.objects.get_or_create(name=name)
    return InspectionImageFactory(width=200, height=100)


def _predict(image, version, boxes):
    return Prediction.objects.create(image=image, model_version=version, label=DefectClass.objects.get(name="inclusion"),
                                     confidence=0.9, probabilities={"inclusion": 0.9, "scratches": 0.1},
                                     needs_review=False, ood_score=0.1, boxes=boxes)


@pytest.fixture
def active(image):
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    _predict(image, version, FOUND)
    return version


def _url(image) -> str:
    return f"/api/v1/images/{image.pk}/boxes/"


def _accept(found: dict, version, **extra) -> dict:
    return {"op": "add", "label": found["label"], "box": found["box"], "from_model": version.pk, **extra}


def test_get_shows_the_active_versions_boxes_best_first_in_fractions_and_pixels(image, active):
    predicted = client_for("viewer").get(_url(image)).json()["predicted"]
    assert predicted == [
        {"label": "inclusion", "box": [0.1, 0.2, 0.5, 0.6], "box_px": [20.0, 20.0, 100.0, 60.0], "score": 0.91,
         "model_version": active.pk, "accepted": False, "box_threshold": 0.3, "above_threshold": True},
        {"label": "scratches", "box": [0.6, 0.0, 0.9, 1.0], "box_px": [120.0, 0.0, 180.0, 100.0], "score": 0.42,
         "model_version": active.pk, "accepted": False, "box_threshold": 0.3, "above_threshold": True},
    ]


def test_only_the_active_versions_prediction_counts(image):
    retired = ModelVersionFactory(status=ModelVersionStatus.RETIRED)
    _predict(image, retired, FOUND)
    assert client_for("qa").get(_url(image)).json()["predicted"] == []
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    _predict(image, version, FOUND[1:])
    assert [(b["label"], b["model_version"]) for b in client_for("qa").get(_url(image)).json()["predicted"]] == [
        ("scratches", version.pk)]


def test_a_version_without_a_detection_head_predicts_no_boxes(image):
    _predict(image, ModelVersionFactory(status=ModelVersionStatus.ACTIVE), [])
    assert client_for("qa").get(_url(image)).json()["predicted"] == []


def test_malformed_stored_boxes_are_left_out_not_a_500(image):
    _predict(image, ModelVersionFactory(status=ModelVersionStatus.ACTIVE),
             [{"label": "inclusion", "box": [0.5, 0.5, 0.1, 0.1], "score": 0.9}, {"label": "crazing"}, "junk",
              {"label": "crazing", "box": [0, 0, 1, 1], "score": 0.3}])
    response = client_for("qa").get(_url(image))
    assert response.status_code == 200
    assert [b["label"] for b in response.json()["predicted"]] == ["crazing"]


def test_accepting_a_model_box_stores_it_as_the_models_with_the_person_and_history(image, active):
    qa = client_for("qa")
    body = qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[0], active)]}, format="json").json()
    (box_id,) = body["added"]
    shown = body["boxes"][0]
    assert (shown["id"], shown["source"], shown["model_version"], shown["created_by"], shown["box"]) == (
        box_id, "model", active.pk, qa.user.username, FOUND[0]["box"])
    assert [b["accepted"] for b in body["predicted"]] == [True, False]
    box = DefectBox.objects.get(pk=box_id)
    assert (box.source, box.model_version_id, box.created_by_id) == (BoxSource.MODEL, active.pk, qa.user.pk)
    change = DefectBoxChange.objects.get(box=box)
    assert (change.action, change.after, change.changed_by_id) == (
        "drawn", {"label": "inclusion", "box": [0.1, 0.2, 0.5, 0.6], "from_model": active.pk}, qa.user.pk)
    history = qa.get(_url(image), {"history": "true"}).json()["history"]
    assert history[0]["after"]["from_model"] == active.pk


def test_an_accepted_box_stays_accepted_after_it_is_moved(image, active):
    qa = client_for("qa")
    (box_id,) = qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[1], active)]},
                        format="json").json()["added"]
    body = qa.post(_url(image), {"expected_version": 1, "changes": [
        {"op": "move", "id": box_id, "box": [0.5, 0.1, 0.8, 0.9]}]}, format="json").json()
    assert [b["accepted"] for b in body["predicted"]] == [False, True]
    assert body["boxes"][0]["source"] == "model"


def test_accepting_in_pixels_keeps_the_models_exact_box(image, active):
    response = client_for("qa").post(_url(image), {"expected_version": 0, "units": "pixels", "changes": [
        _accept({"label": "inclusion", "box": [20.004, 20.0, 100.0, 59.996]}, active)]}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert list(DefectBox.objects.values_list("x0", "y0", "x1", "y1").get()) == [0.1, 0.2, 0.5, 0.6]


@pytest.mark.parametrize("change", [
    {"label": "crazing", "box": FOUND[0]["box"]},  # the model said inclusion there
    {"label": "inclusion", "box": [0.1, 0.2, 0.5, 0.7]},  # not where the model put it
])
def test_accepting_what_the_model_did_not_find_is_refused(change, image, active):
    error = assert_error(client_for("qa").post(_url(image), {"expected_version": 0, "changes": [
        {"op": "add", **change, "from_model": active.pk}]}, format="json"), 400, "not_predicted")
    assert error["details"]["change"] == 0
    assert not DefectBox.objects.exists() and not DefectBoxChange.objects.exists()


@pytest.mark.parametrize("from_model", ["1", True, 1.5, -7])
def test_from_model_must_name_a_version_that_predicted_the_image(from_model, image, active):
    error = assert_error(client_for("qa").post(_url(image), {"expected_version": 0, "changes": [
        _accept(FOUND[0], active) | {"from_model": from_model}]}, format="json"), 400)
    assert error["code"] in {"invalid_box", "not_predicted"}
    assert "from_model" in error["details"]
    assert not DefectBox.objects.exists()


def test_another_versions_id_is_refused(image, active):
    other = ModelVersionFactory()
    assert_error(client_for("qa").post(_url(image), {"expected_version": 0, "changes": [
        _accept(FOUND[0], other)]}, format="json"), 400, "not_predicted")


def test_the_same_model_box_is_not_accepted_twice(image, active):
    qa = client_for("qa")
    assert_error(qa.post(_url(image), {"expected_version": 0, "changes": [
        _accept(FOUND[0], active), _accept(FOUND[0], active)]}, format="json"), 400, "already_accepted")
    assert qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[0], active)]},
                   format="json").status_code == 200
    error = assert_error(qa.post(_url(image), {"expected_version": 1, "changes": [_accept(FOUND[0], active)]},
                                 format="json"), 400, "already_accepted")
    assert error["details"]["change"] == 0
    assert DefectBox.objects.count() == 1


@pytest.mark.parametrize("role", ["viewer", "integrator"])
def test_read_roles_see_predicted_boxes_but_cannot_accept_them(role, image, active):
    client = client_for(role)
    assert len(client.get(_url(image)).json()["predicted"]) == 2
    assert_error(client.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[0], active)]},
                             format="json"), 403)
    assert not DefectBox.objects.exists()


def test_a_stale_accept_is_a_conflict(image, active):
    qa = client_for("qa")
    qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[1], active)]}, format="json")
    error = assert_error(qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[0], active)]},
                                 format="json"), 409, "conflict")
    assert error["details"]["boxes_version"] == 1
    assert DefectBox.objects.count() == 1
