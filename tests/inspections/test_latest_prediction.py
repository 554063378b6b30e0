"""The latest prediction's facts kept on the image (``latest_*``, ``needs_attention``) always equal
those of the image's latest prediction, whatever changed: a prediction, a newer model's, a suspect
label set or cleared, a decision, a deleted prediction; migration 0021 fills them the same way;
and the queue they order is the documented one, its neighbours included."""

from __future__ import annotations

import importlib
import random
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from inspections.catalog.services.images import image_upload
from inspections.catalog.services.suspects import suspect_labels_flag
from inspections.models import DefectClass, InspectionImage, LabelSource, Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review import selectors as review_selectors
from inspections.review.services.inference import predictions_create
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from inspections.review.services.reviews import review_submit
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory, UserFactory, image_bytes

pytestmark = pytest.mark.django_db

FACTS = ("latest_prediction_id", "latest_needs_review", "latest_margin", "latest_label_id", "latest_model_version_id",
         "latest_review_reasons", "needs_attention")
migration = importlib.import_module("inspections.migrations.0021_latest_prediction_on_image")


def _class(name: str) -> DefectClass:
    return DefectClass.objects.get_or_create(name=name)[0]


def _expected(image_id: int) -> dict:
    """The facts computed from scratch: the newest prediction (created_at, then id) and the suspect flag."""
    image = InspectionImage.objects.get(pk=image_id)
    latest = Prediction.objects.filter(image_id=image_id).order_by("-created_at", "-id").first()
    suspect = image.suspect_suggestion_id is not None
    if latest is None:
        return dict.fromkeys(FACTS) | {"needs_attention": True if suspect else None}
    return {"latest_prediction_id": latest.pk, "latest_needs_review": latest.needs_review,
            "latest_margin": latest.margin, "latest_label_id": latest.label_id,
            "latest_model_version_id": latest.model_version_id, "latest_review_reasons": latest.review_reasons,
            "needs_attention": True if suspect else latest.needs_review}


def _facts(image_id: int) -> dict:
    return InspectionImage.objects.filter(pk=image_id).values(*FACTS).get()


def _prediction(image, *, needs_review=False, margin=0.3, label="crazing", version=None, reasons=(), age_s=0):
    prediction = Prediction.objects.create(
        image=image, model_version=version or ModelVersionFactory(), label=_class(label), confidence=0.6,
        probabilities={label: 0.6}, needs_review=needs_review, ood_score=0.2, margin=margin,
        review_reasons=list(reasons))
    if age_s:
        Prediction.objects.filter(pk=prediction.pk).update(created_at=timezone.now() - timedelta(seconds=age_s))
    return prediction


def test_the_inference_service_writes_the_facts_of_the_prediction_it_makes(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    image = image_upload(content=image_bytes(seed=3), filename="x.png", uploaded_by=None).image
    assert _facts(image.pk) == dict.fromkeys(FACTS)
    predictions_create(image_ids=[image.pk])
    prediction = Prediction.objects.get(image=image)
    assert _facts(image.pk)["latest_prediction_id"] == prediction.pk
    assert _facts(image.pk) == _expected(image.pk)


def test_a_newer_models_prediction_becomes_the_latest(no_queue, tiny_model_dirs):
    first = model_version_register(model_dir=tiny_model_dirs[0])
    model_version_promote(version=first)
    image = image_upload(content=image_bytes(seed=4), filename="x.png", uploaded_by=None).image
    predictions_create(image_ids=[image.pk])
    old = Prediction.objects.get(image=image)
    second = model_version_register(model_dir=tiny_model_dirs[1])
    model_version_promote(version=second)
    predictions_create(image_ids=[image.pk])
    newer = Prediction.objects.get(image=image, model_version=second)
    assert newer.pk != old.pk
    assert _facts(image.pk)["latest_prediction_id"] == newer.pk
    assert _facts(image.pk)["latest_model_version_id"] == second.pk
    assert _facts(image.pk) == _expected(image.pk)


def test_an_older_prediction_written_later_does_not_become_the_latest():
    image = InspectionImageFactory()
    newest = _prediction(image, needs_review=True, margin=0.05)
    _prediction(image, needs_review=False, margin=0.9, age_s=3600)
    images_latest_prediction_refresh(image_ids=[image.pk])
    assert _facts(image.pk)["latest_prediction_id"] == newest.pk
    assert _facts(image.pk) == _expected(image.pk)


def test_a_suspect_label_needs_attention_and_clearing_it_gives_the_prediction_back_the_say():
    image = InspectionImageFactory(label=_class("crazing"), label_source=LabelSource.IMPORT)
    PredictionFactory(image=image, needs_review=False)
    assert _facts(image.pk)["needs_attention"] is False
    flagged = [{"image_id": image.pk, "label": "crazing", "suggested_label": "inclusion", "score": 0.9, "issue": True}]
    _class("inclusion")
    assert suspect_labels_flag(image_ids=[image.pk], flagged=flagged) == 1
    assert _facts(image.pk)["needs_attention"] is True
    assert _facts(image.pk) == _expected(image.pk)
    suspect_labels_flag(image_ids=[image.pk], flagged=[])
    assert _facts(image.pk)["needs_attention"] is False
    assert _facts(image.pk) == _expected(image.pk)


def test_a_suspect_image_without_a_prediction_needs_attention():
    image = InspectionImageFactory(label=_class("crazing"), label_source=LabelSource.IMPORT)
    _class("inclusion")
    suspect_labels_flag(image_ids=[image.pk], flagged=[
        {"image_id": image.pk, "label": "crazing", "suggested_label": "inclusion", "score": 0.8, "issue": True}])
    assert _facts(image.pk) == dict.fromkeys(FACTS) | {"needs_attention": True}
    assert review_selectors.review_queue_counts()["without_prediction"] == 1


def test_a_decision_on_a_suspect_label_clears_its_attention_and_keeps_the_prediction_facts():
    qa = UserFactory(roles=["qa"])
    image = InspectionImageFactory(label=_class("crazing"), label_source=LabelSource.IMPORT)
    PredictionFactory(image=image, needs_review=True, review_reasons=["low_confidence"])
    _class("inclusion")
    suspect_labels_flag(image_ids=[image.pk], flagged=[
        {"image_id": image.pk, "label": "crazing", "suggested_label": "inclusion", "score": 0.8, "issue": True}])
    review_submit(image=image, label_name="crazing", reviewer=qa)
    assert _facts(image.pk)["needs_attention"] is True  # the prediction itself asked for review
    assert _facts(image.pk) == _expected(image.pk)
    assert image.pk not in set(review_selectors.image_list_for_review().values_list("id", flat=True))


def test_a_deleted_latest_prediction_is_replaced_by_the_one_before_it():
    image = InspectionImageFactory()
    before = _prediction(image, needs_review=False, margin=0.8, age_s=60)
    latest = _prediction(image, needs_review=True, margin=0.01, reasons=["foreign"])
    images_latest_prediction_refresh(image_ids=[image.pk])
    assert _facts(image.pk)["latest_prediction_id"] == latest.pk
    latest.delete()  # the reference goes to null at once (SET_NULL), the refresh re-points it
    assert _facts(image.pk)["latest_prediction_id"] is None
    images_latest_prediction_refresh(image_ids=[image.pk])
    assert _facts(image.pk)["latest_prediction_id"] == before.pk
    assert _facts(image.pk) == _expected(image.pk)
    before.delete()
    images_latest_prediction_refresh(image_ids=[image.pk])
    assert _facts(image.pk) == dict.fromkeys(FACTS)


def _random_queue(seed: int) -> list[InspectionImage]:
    """Images in every state the queue orders: flagged or not, ties on margin, labelled or not,
    suspect, reviewed, excluded, never predicted, predicted twice."""
    rng = random.Random(seed)
    crazing, inclusion = _class("crazing"), _class("inclusion")
    reviewer = UserFactory(roles=["qa"])
    images = []
    for n in range(40):
        labelled = rng.random() < 0.4
        image = InspectionImageFactory(label=crazing if labelled else None,
                                       label_source=LabelSource.IMPORT if labelled else LabelSource.NONE)
        InspectionImage.objects.filter(pk=image.pk).update(created_at=timezone.now() - timedelta(minutes=rng.randrange(5)))
        for _ in range(rng.choice([0, 1, 1, 2])):
            _prediction(image, needs_review=rng.random() < 0.3, margin=rng.choice([0.1, 0.2, 0.5, None]),
                        age_s=rng.randrange(1000))
        images_latest_prediction_refresh(image_ids=[image.pk])
        if labelled and rng.random() < 0.2:
            suspect_labels_flag(image_ids=[], flagged=[{"image_id": image.pk, "label": "crazing",
                                                        "suggested_label": "inclusion", "score": 0.7, "issue": True}])
        elif rng.random() < 0.1:
            review_submit(image=image, label_name=inclusion.name, reviewer=reviewer)
        elif rng.random() < 0.05:
            InspectionImage.objects.filter(pk=image.pk).update(excluded=True)
        images.append(image)
    return images


def _documented_order() -> list[int]:
    """The queue's contract computed in Python from the predictions themselves (docstring of
    ``image_list_for_review``)."""
    waiting = []
    for image in InspectionImage.objects.filter(excluded=False):
        if image.label_source == LabelSource.REVIEW and image.suspect_suggestion_id is None:
            continue
        latest = Prediction.objects.filter(image=image).order_by("-created_at", "-id").first()
        attention = True if image.suspect_suggestion_id else (latest.needs_review if latest else None)
        margin = latest.margin if latest else None
        waiting.append(((0 if attention else 1 if attention is False else 2),
                        (0, margin) if margin is not None else (1, 0), 0 if image.label_id is None else 1,
                        image.created_at, image.pk))
    return [key[-1] for key in sorted(waiting)]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_queue_keeps_its_documented_order_and_every_neighbour_agrees(seed):
    _random_queue(seed)
    queue = list(review_selectors.image_list_for_review().values_list("id", flat=True))
    assert queue == _documented_order()
    for at, image_id in enumerate(queue):
        assert review_selectors.review_queue_neighbours(image_id=image_id) == {
            "previous": queue[at - 1] if at else None, "next": queue[at + 1] if at + 1 < len(queue) else None,
            "position": at + 1}


def test_neighbours_count_the_position_up_to_the_window_and_start_over_outside_the_queue():
    _random_queue(3)
    queue = list(review_selectors.image_list_for_review().values_list("id", flat=True))
    assert review_selectors.review_queue_neighbours(image_id=queue[5], window=5)["position"] is None
    assert review_selectors.review_queue_neighbours(image_id=queue[4], window=5)["position"] == 5
    reviewed = InspectionImage.objects.filter(label_source=LabelSource.REVIEW, suspect_suggestion__isnull=True).first()
    assert review_selectors.review_queue_neighbours(image_id=reviewed.pk) == {"previous": None, "next": queue[0],
                                                                       "position": None}


def test_the_counts_agree_with_the_queue():
    _random_queue(4)
    queue = list(review_selectors.image_list_for_review())
    counts = review_selectors.review_queue_counts()
    assert counts["left"] == len(queue)
    assert counts["needs_review"] == sum(1 for image in queue if image.needs_attention)
    assert counts["suspect_label"] == sum(1 for image in queue if image.suspect_suggestion_id)
    assert counts["unlabelled"] == sum(1 for image in queue if image.label_id is None)
    assert counts["without_prediction"] == sum(1 for image in queue if image.latest_prediction_id is None)


@pytest.mark.parametrize("fill", ["postgresql", "portable"])
def test_the_migration_fills_every_image_as_the_services_would(fill):
    images = _random_queue(5)
    InspectionImage.objects.update(**dict.fromkeys(FACTS))
    if fill == "postgresql":
        migration.latest_prediction_fill(apps, SimpleNamespace(connection=connection))
    else:
        migration._fill_portable(apps, min(i.pk for i in images), max(i.pk for i in images) + 1)
    for image in images:
        assert _facts(image.pk) == _expected(image.pk), image.pk
