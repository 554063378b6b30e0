"""The hand-written upload answer (inspections/api/upload_output.py) is ImageOutput's, byte for byte."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from inspections.catalog.api.upload_output import new_image_output
from inspections.catalog.services.images import image_upload
from inspections.review.api.serializers import ImageOutput
from tests.factories import DefectClassFactory, ModelVersionFactory, PredictionFactory, UserFactory, image_bytes
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


def _request():
    return APIRequestFactory().post("/api/v1/images/", HTTP_HOST="line-3.example:8000")


def _just_uploaded(*, seed: int, uploaded_by=None, **fields):
    image = image_upload(content=image_bytes(seed=seed, size=(30, 20)), filename="dir/coil 7.png",
                         uploaded_by=uploaded_by, enqueue=False, **fields).image
    image.predictions_latest_first = []  # as the upload view answers a new image it did not wait for
    return image


def _rendered(body) -> bytes:
    return JSONRenderer().render(body)


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin"])
def test_answer_for_a_new_image_renders_exactly_as_image_output(settings, time_zone):
    settings.TIME_ZONE = time_zone
    settings.ALLOWED_HOSTS = ["line-3.example"]
    image = _just_uploaded(seed=1, uploaded_by=UserFactory(username="camera-7"), source="line-3",
                           external_id="coil-7")
    request = _request()
    by_hand = new_image_output(image, request=request)
    assert by_hand is not None
    assert _rendered(by_hand) == _rendered(ImageOutput(image, context={"request": request}).data)
    assert by_hand["uploaded_by"] == "camera-7"
    assert by_hand["url"] == f"http://line-3.example:8000/api/v1/images/{image.pk}/"


def test_answer_for_an_anonymous_upload_renders_exactly_as_image_output(settings):
    settings.ALLOWED_HOSTS = ["line-3.example"]
    image = _just_uploaded(seed=2)
    request = _request()
    by_hand = new_image_output(image, request=request)
    assert by_hand["uploaded_by"] is None
    assert _rendered(by_hand) == _rendered(ImageOutput(image, context={"request": request}).data)


def test_an_image_with_a_prediction_or_a_label_is_left_to_the_serializer():
    predicted = _just_uploaded(seed=3)
    predicted.predictions_latest_first = [PredictionFactory(image=predicted, model_version=ModelVersionFactory())]
    labelled = _just_uploaded(seed=4)
    labelled.label = DefectClassFactory()
    not_read = _just_uploaded(seed=5)
    del not_read.predictions_latest_first  # read back from the database: whether it has one is unknown
    assert [new_image_output(i, request=_request()) for i in (predicted, labelled, not_read)] == [None, None, None]


def test_upload_answer_equals_what_the_image_reads_back_as(media_root):
    client = client_for("integrator")
    upload = SimpleUploadedFile("coil-9.png", image_bytes(seed=6), content_type="application/octet-stream")
    response = client.post("/api/v1/images/?wait=0", {"file": [upload], "source": "line-9"}, format="multipart")
    assert response.status_code == 201, response.content
    read_back = client.get(f"/api/v1/images/{response.json()['id']}/").json()
    assert response.json() == {key: read_back[key] for key in ImageOutput.Meta.fields}
