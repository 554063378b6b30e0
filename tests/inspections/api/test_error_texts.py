"""Refusals an integrator meets on the first day say what to change: the authentication scheme,
a version the image never had, an upload that cannot be predicted because no model is live."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from inspections.models import DefectClass, InspectionImage
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import InspectionImageFactory, ModelVersionFactory, UserFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

IMAGES = "/api/v1/images/"


# --- the Authorization scheme ---------------------------------------------------------------

def test_a_bearer_header_is_told_the_scheme_is_token():
    secret = api_token_create(user=UserFactory(roles=["integrator"]), name="plc", scope="admin").secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get(IMAGES)
    error = assert_error(response, 401, "not_authenticated")
    assert "'Bearer'" in error["message"] and "Authorization: Token <key>" in error["message"]
    assert secret not in error["message"]
    assert response["WWW-Authenticate"] == "Token"


def test_an_unprintable_scheme_is_not_echoed():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="<script>x</script> abc")
    error = assert_error(client.get(IMAGES), 401, "not_authenticated")
    assert "another scheme" in error["message"] and "<script>" not in error["message"]


def test_no_header_keeps_the_plain_answer():
    error = assert_error(APIClient().get(IMAGES), 401, "not_authenticated")
    assert error["message"] == "Authentication credentials were not provided."


def test_a_session_behind_a_proxys_basic_header_still_works():
    client = APIClient()
    client.force_login(UserFactory(roles=["viewer"]))
    assert client.get(IMAGES, HTTP_AUTHORIZATION="Basic cHJveHk6cHc=").status_code == 200


# --- a version the image never had ----------------------------------------------------------

@pytest.fixture
def image():
    return InspectionImageFactory(width=200, height=100, label=DefectClass.objects.get(name="scratches"),
                                  label_source="import")


def test_a_review_naming_a_version_ahead_of_the_image_says_so(image):
    response = client_for("qa").post(f"{IMAGES}{image.pk}/reviews/", {"label": "crazing", "expected_version": 3},
                                     format="json")
    error = assert_error(response, 409, "conflict")
    assert error["message"].startswith("The image's label_version is 0, not 3: it has never been at version 3")
    assert "changed since" not in error["message"]
    assert error["details"]["label_version"] == 0


def test_a_stale_review_still_says_the_label_changed(image):
    qa = client_for("qa")
    assert qa.post(f"{IMAGES}{image.pk}/reviews/", {"label": "crazing", "expected_version": 0},
                   format="json").status_code == 201
    response = qa.post(f"{IMAGES}{image.pk}/reviews/", {"label": "patches", "expected_version": 0}, format="json")
    error = assert_error(response, 409, "conflict")
    assert error["message"].startswith("The image's label changed since version 0; the image's label_version is now 1.")


def test_boxes_naming_a_version_ahead_of_the_image_say_so(image):
    change = {"op": "add", "label": "inclusion", "box": [0.1, 0.2, 0.5, 0.6]}
    response = client_for("qa").post(f"{IMAGES}{image.pk}/boxes/", {"expected_version": 3, "changes": [change]},
                                     format="json")
    error = assert_error(response, 409, "conflict")
    assert error["message"].startswith("The image's boxes_version is 0, not 3: it has never been at version 3")


# --- ?wait= with no model live ----------------------------------------------------------------

def _upload(*seeds: int):
    files = [SimpleUploadedFile(f"s{seed}.png", image_bytes(seed=seed)) for seed in seeds]
    started = time.monotonic()
    response = client_for("integrator").post(f"{IMAGES}?wait=10", {"file": files}, format="multipart")
    return response, time.monotonic() - started


def test_a_waiting_upload_with_no_active_model_answers_at_once_and_says_why(media_root, no_queue):
    response, took = _upload(501)
    assert response.status_code == 201, response.content[:300]
    assert took < 5, "it waited for a prediction nothing will make"
    body = response.json()
    assert body["status"] == "pending" and body["prediction"] is None
    assert body["wait_skipped"]["code"] == "no_active_model"
    assert "No model version is active" in body["wait_skipped"]["message"]
    assert InspectionImage.objects.filter(pk=body["id"], status="pending").exists()  # predicted once one is live


def test_a_waiting_multi_upload_with_no_active_model_says_why_beside_the_results(media_root, no_queue):
    response, took = _upload(502, 503)
    assert response.status_code == 201 and took < 5
    body = response.json()
    assert [result["created"] for result in body["results"]] == [True, True]
    assert body["wait_skipped"]["code"] == "no_active_model"


def test_with_an_active_model_the_answer_has_no_wait_skipped(media_root, no_queue, settings):
    model_version_promote(version=ModelVersionFactory())
    settings.STEELQC_API_MAX_WAIT_SECONDS = 30
    response = client_for("integrator").post(f"{IMAGES}?wait=0.2", {"file": [
        SimpleUploadedFile("s.png", image_bytes(seed=504))]}, format="multipart")
    assert response.status_code == 201 and "wait_skipped" not in response.json()
