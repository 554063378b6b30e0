"""Every upload and classify/ frame is scored by the active anomaly model beside the classifier, and by
it alone when no classifier is active: the score and reason on the prediction, the image's copy of the
score, the map, the queue's reason filter and order. In-process, with one tiny real anomaly model."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from inspections.catalog.services.images import image_upload
from inspections.line.models import RetentionPolicy
from inspections.line.services.classify import classify_run
from inspections.models import InspectionImage, Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review.selectors import image_list_for_review
from inspections.review.services.inference import predictions_create
from tests.data import ANOMALY_DEFECT_PATTERN, ANOMALY_GOOD_PATTERN, good_with_a_blotch, surface
from tests.factories import AnomalyVersionFactory, PredictionFactory, UserFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


def _png(pattern: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(surface(pattern, np.random.default_rng(seed))).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def anomaly_model(tiny_anomaly_model_dir, no_queue):
    return model_version_promote(version=model_version_register(model_dir=tiny_anomaly_model_dir))


def _upload(pattern: str, seed: int) -> InspectionImage:
    return image_upload(content=_png(pattern, seed), filename=f"{pattern}-{seed}.png", uploaded_by=None,
                        enqueue=False).image


def test_an_anomaly_model_alone_scores_uploads_without_a_class(anomaly_model):
    good, defect = _upload(ANOMALY_GOOD_PATTERN, 101), _upload(ANOMALY_DEFECT_PATTERN, 102)
    assert predictions_create(image_ids=[good.pk, defect.pk]) == 2
    flagged = Prediction.objects.get(image=defect)
    assert (flagged.model_version, flagged.anomaly_version, flagged.label) == (anomaly_model, anomaly_model, None)
    assert flagged.anomaly_score > 1 and flagged.review_reasons == ["anomaly"] and flagged.needs_review
    passed = Prediction.objects.get(image=good)
    assert passed.anomaly_score < 1 and passed.review_reasons == [] and not passed.needs_review
    defect.refresh_from_db()
    assert defect.latest_anomaly_score == flagged.anomaly_score and defect.latest_review_reasons == ["anomaly"]

    body = client_for("viewer").get(f"/api/v1/images/{defect.pk}/").json()
    assert body["review_reasons"] == ["anomaly"]
    prediction = body["prediction"]
    assert (prediction["label"], prediction["confidence"], prediction["ood_score"]) == (None, None, None)
    assert prediction["anomaly_score"] == pytest.approx(flagged.anomaly_score)
    assert prediction["anomaly_model_version"] == anomaly_model.pk
    assert "Unlike the good steel" in prediction["review_explanation"][0]["text"]


def test_the_classifier_answers_with_the_anomaly_score_beside_it(anomaly_model, tiny_model_dirs):
    classifier = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    defect = _upload(ANOMALY_DEFECT_PATTERN, 103)
    predictions_create(image_ids=[defect.pk])
    prediction = Prediction.objects.get(image=defect)
    assert (prediction.model_version, prediction.anomaly_version) == (classifier, anomaly_model)
    assert prediction.label is not None and prediction.anomaly_score > 1
    assert prediction.review_reasons[-1] == "anomaly" and prediction.needs_review


def test_the_map_is_drawn_at_the_images_size_where_the_defect_is(anomaly_model, client):
    buffer = io.BytesIO()
    Image.fromarray(good_with_a_blotch(np.random.default_rng(104), at=(20, 4))).save(buffer, format="PNG")
    defect = image_upload(content=buffer.getvalue(), filename="blotch.png", uploaded_by=None, enqueue=False).image
    predictions_create(image_ids=[defect.pk])
    client.force_login(UserFactory(roles=["qa"]))
    response = client.get(reverse("inspections:image-anomaly-map", args=[defect.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    overlay = Image.open(io.BytesIO(response.content))
    assert (overlay.mode, overlay.size) == ("RGBA", (defect.width, defect.height))
    alpha = np.asarray(overlay)[..., 3].astype(int)
    assert alpha[20:26, 4:10].mean() > 100 and alpha[:8, 20:].mean() < 20  # over the blotch, not the stripes
    page = client.get(reverse("inspections:review-image", args=[defect.pk])).content.decode()
    assert 'id="anomaly-toggle"' in page and 'id="anomaly-score"' in page and 'id="no-class"' in page


def test_a_classify_frame_is_scored_and_flagged_with_no_classifier_active(anomaly_model, settings, tmp_path):
    from inspections.line.services.classify_transport import classify_transport

    settings.STEELQC_EVENTS_REDIS_URL = ""  # the file transport: no Redis needed in-process
    settings.VAR_DIR = tmp_path
    RetentionPolicy.objects.create(source="", sample_rate=0.0, max_per_minute=10, max_per_day=10)
    transport = classify_transport()
    transport.frames_put({"f-0": _png(ANOMALY_DEFECT_PATTERN, 105), "f-1": _png(ANOMALY_GOOD_PATTERN, 106)}, ttl_s=60)
    items = [{"key": "f-0", "filename": "spots.png", "sha256": "a" * 64},
             {"key": "f-1", "filename": "stripes.png", "sha256": "b" * 64}]
    with transport.answer_wait("answers") as answers:
        classify_run(request_id="r1", reply_to="answers", items=items, source="strip-1")
        results = json.loads(answers.next_answer(deadline=time.monotonic() + 5))["results"]
    spots, stripes = (result["prediction"] for result in results)
    assert spots["label"] is None and spots["anomaly_score"] > 1 and spots["review_reasons"] == ["anomaly"]
    assert spots["anomaly_model_version"] == anomaly_model.pk and spots["model_version"] == anomaly_model.pk
    assert stripes["review_reasons"] == [] and stripes["anomaly_score"] < 1
    kept = InspectionImage.objects.get(pk=results[0]["image_id"])  # flagged frames are kept for review
    assert kept.latest_review_reasons == ["anomaly"]


def test_the_queue_filters_by_reason_anomaly_and_orders_by_anomaly_score():
    version = AnomalyVersionFactory()
    low = PredictionFactory(anomaly_version=version, anomaly_score=1.5, review_reasons=["anomaly"], needs_review=True)
    high = PredictionFactory(anomaly_version=version, anomaly_score=4.0, review_reasons=["anomaly"], needs_review=True)
    PredictionFactory(review_reasons=["low_confidence"], needs_review=True, probabilities={"crazing": 0.4, "inclusion": 0.35})
    flagged = image_list_for_review(filters={"review_reason": "anomaly", "order": "anomaly"})
    assert [image.pk for image in flagged] == [high.image_id, low.image_id]
    everything = [image.pk for image in image_list_for_review(filters={"order": "anomaly"})]
    assert everything[:2] == [high.image_id, low.image_id] and len(everything) == 3


def test_the_dashboard_draws_a_line_whose_predictions_have_no_class(client):
    version = AnomalyVersionFactory()
    for score in (0.5, 2.0):
        PredictionFactory(model_version=version, anomaly_version=version, anomaly_score=score, label=None,
                          confidence=None, ood_score=None, probabilities={}, review_reasons=["anomaly"] * (score > 1))
    client.force_login(UserFactory(roles=["viewer"]))
    response = client.get(reverse("inspections:dashboard"))
    assert response.status_code == 200
    assert "mean confidence" in response.content.decode()
