"""The queue shows each review reason as a badge and filters by it; the review view says why in words."""

from __future__ import annotations

import pytest
from django.test import Client

from inspections.models import Prediction
from inspections.review.services.latest_prediction import images_latest_prediction_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def qa_client(role_user) -> Client:
    client = Client()
    client.force_login(role_user("qa"))
    return client


def _with_reasons(predicted_image, probabilities, reasons):
    image = predicted_image(probabilities, needs_review=bool(reasons))
    Prediction.objects.filter(image=image).update(review_reasons=reasons, ood_score=2.5 if "foreign" in reasons else 0.2)
    images_latest_prediction_refresh(image_ids=[image.pk])
    return image


def test_queue_shows_one_badge_per_reason(qa_client, predicted_image):
    image = _with_reasons(predicted_image, {"crazing": 0.5, "inclusion": 0.5}, ["foreign", "low_confidence"])
    html = qa_client.get("/review/").content.decode()
    row = html[html.index(f'data-image-id="{image.pk}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-reason="foreign"' in row and 'data-reason="low_confidence"' in row
    assert ">low confidence<" in row


def test_queue_filters_by_reason(qa_client, predicted_image):
    foreign = _with_reasons(predicted_image, {"crazing": 0.9, "inclusion": 0.1}, ["foreign"])
    hesitant = _with_reasons(predicted_image, {"crazing": 0.5, "inclusion": 0.5}, ["low_confidence"])
    html = qa_client.get("/review/?review_reason=foreign").content.decode()
    assert f'data-image-id="{foreign.pk}"' in html
    assert f'data-image-id="{hesitant.pk}"' not in html


def test_review_view_says_why_in_words(qa_client, predicted_image):
    image = _with_reasons(predicted_image, {"crazing": 0.5, "patches": 0.4, "inclusion": 0.1}, ["foreign", "low_confidence"])
    html = qa_client.get(f"/review/{image.pk}/").content.decode()
    assert "Unlike anything the model was trained on." in html
    assert "The model hesitates between crazing and patches." in html
    assert "OOD score 2.50" in html


def test_blank_frame_tells_to_check_the_camera(qa_client, predicted_image):
    image = _with_reasons(predicted_image, {"crazing": 0.9, "inclusion": 0.1}, ["blank_frame"])
    html = qa_client.get(f"/review/{image.pk}/").content.decode()
    assert "The frame is blank or saturated — check the camera." in html


def test_the_no_javascript_form_excludes_and_includes_again(qa_client, predicted_image, role_user):
    from inspections.models import InspectionImage, Review

    image = predicted_image({"crazing": 0.9, "inclusion": 0.1})
    response = qa_client.post(f"/review/{image.pk}/decide/", {"exclude": "true", "reason": "test shot",
                                                               "expected_version": "0", "next": "/review/"})
    assert response.status_code == 302 and response["Location"] == "/review/"
    assert InspectionImage.objects.filter(pk=image.pk, excluded=True, exclusion_reason="test shot").exists()
    html = qa_client.get(f"/review/{image.pk}/").content.decode()
    assert "excluded</strong>: test shot" in html
    refused = qa_client.post(f"/review/{image.pk}/decide/", {"exclude": "true", "reason": "again", "expected_version": "1"})
    assert refused.status_code == 409
    qa_client.post(f"/review/{image.pk}/decide/", {"exclude": "false", "expected_version": "1"})
    assert list(Review.objects.filter(image=image).order_by("id").values_list("decision", flat=True)) == ["exclude", "include"]
    viewer = Client()
    viewer.force_login(role_user("viewer"))
    assert viewer.post(f"/review/{image.pk}/decide/", {"exclude": "true", "reason": "x"}).status_code == 403
    assert not InspectionImage.objects.get(pk=image.pk).excluded
