"""The model's boxes under their class's box threshold: images/{id}/boxes/ and the image's
prediction keep returning every box, each marked with its class's box_threshold and
above_threshold; accepting one that is under it is refused (below_box_threshold), all or nothing."""

from __future__ import annotations

import pytest

from inspections.models import DefectBox, DefectBoxChange, DefectClass, ModelVersionStatus, Prediction
from inspections.registry.services.thresholds import version_box_thresholds_set
from tests.factories import InspectionImageFactory, ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

FOUND = [{"label": "inclusion", "box": [0.1, 0.2, 0.5, 0.6], "score": 0.91},
         {"label": "scratches", "box": [0.6, 0.0, 0.9, 1.0], "score": 0.42},
         {"label": "scratches", "box": [0.0, 0.7, 0.2, 0.9], "score": 0.21}]


@pytest.fixture
def image():
    for name in ("inclusion", "scratches"):
        DefectClass.objects.get_or_create(name=name)
    return InspectionImageFactory(width=200, height=100)


@pytest.fixture
def active(image):
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, classes=["inclusion", "scratches"])
    Prediction.objects.create(image=image, model_version=version, label=DefectClass.objects.get(name="inclusion"),
                              confidence=0.9, probabilities={"inclusion": 0.9, "scratches": 0.1}, needs_review=False,
                              ood_score=0.1, boxes=FOUND)
    return version


def _url(image) -> str:
    return f"/api/v1/images/{image.pk}/boxes/"


def _accept(found: dict, version) -> dict:
    return {"op": "add", "label": found["label"], "box": found["box"], "from_model": version.pk}


def _marks(boxes) -> list[tuple]:
    return [(b["label"], b["score"], b["box_threshold"], b["above_threshold"]) for b in boxes]


def test_every_box_is_returned_marked_against_the_default_threshold(image, active):
    predicted = client_for("viewer").get(_url(image)).json()["predicted"]
    assert _marks(predicted) == [("inclusion", 0.91, 0.3, True), ("scratches", 0.42, 0.3, True),
                                 ("scratches", 0.21, 0.3, False)]


def test_a_classs_threshold_marks_only_that_classs_boxes(image, active):
    version_box_thresholds_set(version=active, thresholds={"scratches": 0.5})
    predicted = client_for("qa").get(_url(image)).json()["predicted"]
    assert _marks(predicted) == [("inclusion", 0.91, 0.3, True), ("scratches", 0.42, 0.5, False),
                                 ("scratches", 0.21, 0.5, False)]


def test_a_score_equal_to_the_threshold_is_above_it(image, active):
    version_box_thresholds_set(version=active, thresholds={"scratches": 0.42})
    predicted = client_for("qa").get(_url(image)).json()["predicted"]
    assert [b["above_threshold"] for b in predicted] == [True, True, False]


def test_the_images_prediction_marks_its_boxes_too(image, active):
    version_box_thresholds_set(version=active, thresholds={"inclusion": 0.95})
    prediction = client_for("viewer").get(f"/api/v1/images/{image.pk}/").json()["prediction"]
    assert [(b["label"], b["score"], b["box"], b["box_threshold"], b["above_threshold"])
            for b in prediction["boxes"]] == [("inclusion", 0.91, [0.1, 0.2, 0.5, 0.6], 0.95, False),
                                              ("scratches", 0.42, [0.6, 0.0, 0.9, 1.0], 0.3, True),
                                              ("scratches", 0.21, [0.0, 0.7, 0.2, 0.9], 0.3, False)]


def test_accepting_a_box_under_its_threshold_is_refused_and_nothing_is_stored(image, active):
    error = assert_error(client_for("qa").post(_url(image), {"expected_version": 0, "changes": [
        _accept(FOUND[0], active), _accept(FOUND[2], active)]}, format="json"), 400, "below_box_threshold")
    assert error["details"]["change"] == 1 and error["details"]["box_threshold"] == 0.3
    assert not DefectBox.objects.exists() and not DefectBoxChange.objects.exists()


def test_raising_a_threshold_withdraws_a_box_that_was_offered(image, active):
    qa = client_for("qa")
    version_box_thresholds_set(version=active, thresholds={"scratches": 0.5})
    assert_error(qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[1], active)]},
                         format="json"), 400, "below_box_threshold")
    version_box_thresholds_set(version=active, thresholds={"scratches": 0.4})
    response = qa.post(_url(image), {"expected_version": 0, "changes": [_accept(FOUND[1], active)]}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert DefectBox.objects.get().label.name == "scratches"


def test_a_person_may_still_draw_a_box_where_a_hidden_one_was(image, active):
    response = client_for("qa").post(_url(image), {"expected_version": 0, "changes": [
        {"op": "add", "label": "scratches", "box": FOUND[2]["box"]}]}, format="json")
    assert response.status_code == 200, response.content[:300]
    assert DefectBox.objects.get().source == "person"
