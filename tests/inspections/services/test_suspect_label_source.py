"""Whose opinion a suspect label is: the run whose out-of-fold check flagged it, and when, shown in
the queue, the review view and the API beside what the model in service says. A run whose version
the gate refused sends no suspects to review. The training itself is replaced by its results here
(the model, the gate's decision, the suspects file): what is tested is what the run does with them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from inspections.catalog.services.suspects import suspect_labels_flag
from inspections.models import DefectClass, Prediction, TrainingRunStatus
from inspections.registry.services import training as training_service
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.factories import InspectionImageFactory, ModelVersionFactory, TrainingRunFactory, UserFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


def _labelled(name: str, split: str = "train"):
    return InspectionImageFactory(label=DefectClass.objects.get_or_create(name=name)[0], label_source="import",
                                  split=split)


@pytest.fixture
def run_with_results(monkeypatch, settings, no_queue):
    """``run(promoted)``: a queued run over a few labelled images whose training "finds" the first
    crazing image labelled wrong, and whose gate decides ``promoted``; returns (run, suspect image)."""
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 0

    def run(promoted: bool):
        images = [_labelled("crazing"), _labelled("crazing", "val"), _labelled("inclusion"), _labelled("inclusion", "val")]
        suspect = images[0]
        monkeypatch.setattr(training_service, "local_copies",
                            lambda *, names, folder: {name: Path(folder) / name for name in names})
        monkeypatch.setattr("mlcore.training.train", lambda *args, **kwargs: SimpleNamespace(metrics={"accuracy": 1.0}))
        monkeypatch.setattr(training_service, "model_version_register", lambda **kwargs: ModelVersionFactory())
        monkeypatch.setattr(training_service, "suspects_read", lambda **kwargs: [
            {"image_id": suspect.pk, "label": "crazing", "suggested_label": "inclusion", "score": 0.93, "issue": True}])
        monkeypatch.setattr(training_service, "gate_and_promote", lambda **kwargs: {
            "promoted": promoted, "reasons": [] if promoted else ["inclusion recall fell"]})
        started = training_service.training_run_start(requested_by=None, params={}, enqueue=False)
        finished = training_service.training_run_execute(run_id=started.pk)
        assert finished.status == TrainingRunStatus.SUCCEEDED, finished.error
        suspect.refresh_from_db()
        return finished, suspect

    return run


def test_a_run_the_gate_refused_sends_no_suspects_to_review(run_with_results):
    run, image = run_with_results(promoted=False)
    assert image.suspect_suggestion_id is None and image.suspect_run_id is None
    assert "1 suspect label(s) not sent to review: the gate kept this version as a candidate" in run.log


def test_a_promoted_run_sends_its_suspects_with_its_name_and_time(run_with_results):
    run, image = run_with_results(promoted=True)
    assert image.suspect_suggestion.name == "inclusion"
    assert image.suspect_run_id == run.pk and image.suspect_flagged_at is not None
    assert "1 suspect label(s) sent to review" in run.log


def test_a_refused_run_leaves_the_suspicions_of_the_run_in_service(run_with_results):
    earlier, flagged = run_with_results(promoted=True)
    # The next run trains on the same images and more, finds another suspect, and is refused.
    _, refused_suspect = run_with_results(promoted=False)
    flagged.refresh_from_db()
    assert (flagged.suspect_suggestion.name, flagged.suspect_run_id) == ("inclusion", earlier.pk)
    assert refused_suspect.suspect_suggestion_id is None


def _flagged_with_prediction(predicted: str, confidence: float):
    image = _labelled("crazing")
    run = TrainingRunFactory()
    suspect_labels_flag(image_ids=[image.pk], run_id=run.pk, flagged=[
        {"image_id": image.pk, "label": "crazing", "suggested_label": "scratches", "score": 0.8, "issue": True}])
    DefectClass.objects.get_or_create(name="scratches")
    other = "scratches" if predicted == "crazing" else "crazing"
    Prediction.objects.create(
        image=image, model_version=ModelVersionFactory(), label=DefectClass.objects.get(name=predicted),
        confidence=confidence, probabilities={predicted: confidence, other: 1 - confidence}, needs_review=False,
        ood_score=0.2, margin=2 * confidence - 1, review_reasons=[])
    images_latest_prediction_refresh(image_ids=[image.pk])
    image.refresh_from_db()
    return image, run


def test_the_review_view_says_whose_opinion_it_is_and_what_the_model_in_service_says(client):
    image, run = _flagged_with_prediction("crazing", 0.91)
    client.force_login(UserFactory(roles=["qa"]))
    html = client.get(f"/review/{image.pk}/").content.decode()
    when = timezone.localtime(image.suspect_flagged_at).strftime("%Y-%m-%d %H:%M")
    assert f"training run {run.pk}&#x27;s out-of-fold check ({when}) suggests scratches" in html
    assert "it is not the model in service, which predicts crazing (91%)." in html


def test_the_queue_badge_names_the_run_and_the_day(client):
    image, run = _flagged_with_prediction("crazing", 0.91)
    client.force_login(UserFactory(roles=["qa"]))
    html = client.get("/review/").content.decode()
    badge = html.split('data-reason="suspect_label"')[1].split("</td>")[0]
    assert f"by run {run.pk}'s check, {timezone.localtime(image.suspect_flagged_at):%Y-%m-%d}" in badge
    assert "not the model in service" in badge


def test_the_api_names_the_run_and_when(client):
    image, run = _flagged_with_prediction("scratches", 0.7)
    body = client_for("viewer").get(f"/api/v1/images/{image.pk}/").json()
    assert body["suspect_label"]["training_run"] == run.pk
    assert body["suspect_label"]["flagged_at"] is not None
