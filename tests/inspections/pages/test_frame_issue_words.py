"""blank_frame in the words of what the frame check found: a dark or saturated frame asks for the
camera and the lighting; a uniform one (a plain sheet) says there is nothing to judge and that
the class guess means nothing; an older prediction without the finding keeps the old words."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from inspections.catalog.services.images import image_upload
from inspections.models import Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review.services.inference import predictions_create
from tests.factories import PredictionFactory, UserFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db

GREY_SHEET = {"inclusion": 0.992, "crazing": 0.005, "patches": 0.003}


def _blank(frame_issue: str) -> Prediction:
    return PredictionFactory(review_reasons=["blank_frame"], needs_review=True, probabilities=GREY_SHEET,
                             frame_issue=frame_issue)


def _explanation(prediction: Prediction) -> str:
    body = client_for("viewer").get(f"/api/v1/images/{prediction.image_id}/").json()["prediction"]
    assert body["frame_issue"] == (prediction.frame_issue or None)
    (reason,) = body["review_explanation"]
    assert reason["code"] == "blank_frame"
    return reason["text"]


def test_a_uniform_frame_says_there_is_nothing_to_judge_not_check_the_camera():
    text = _explanation(_blank("uniform"))
    assert "no surface texture" in text and "its inclusion at 99.2% means nothing here" in text
    assert "not an inspection frame" in text and "camera" not in text


def test_a_dark_frame_asks_for_the_lighting_and_the_camera():
    assert _explanation(_blank("dark")).startswith("The frame is dark")
    assert "check the lighting and the camera" in _explanation(_blank("dark"))


def test_a_saturated_frame_asks_for_the_exposure():
    assert "check the exposure and the lighting" in _explanation(_blank("saturated"))


def test_an_older_prediction_keeps_the_old_words():
    assert _explanation(_blank("")) == "The frame is blank or saturated — check the camera."


def test_the_review_view_shows_the_words(client):
    prediction = _blank("uniform")
    client.force_login(UserFactory(roles=["qa"]))
    html = client.get(f"/review/{prediction.image_id}/").content.decode()
    assert "The frame is even, with no surface texture" in html


def test_the_worker_stores_what_the_frame_check_found(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    stored = []
    for name, level in (("grey.png", 128), ("black.png", 0)):
        buffer = io.BytesIO()
        Image.new("L", (32, 32), level).save(buffer, format="PNG")
        stored.append(image_upload(content=buffer.getvalue(), filename=name, uploaded_by=None).image)
    predictions_create(image_ids=[image.id for image in stored])
    found = {p.image.original_name: (p.review_reasons[0], p.frame_issue)
             for p in Prediction.objects.filter(image__in=stored).select_related("image")}
    assert found == {"grey.png": ("blank_frame", "uniform"), "black.png": ("blank_frame", "dark")}
