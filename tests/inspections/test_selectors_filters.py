"""The API's image list and the review queue filter with one implementation: each filter
means the same in both."""

import pytest

from inspections.models import DefectClass, LabelSource
from inspections.review import selectors as review_selectors
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def _both(filters: dict) -> tuple[set[int], set[int]]:
    listed = set(review_selectors.image_list(filters=filters).values_list("id", flat=True))
    queued = set(review_selectors.image_list_for_review(filters={"reviewed": "all", **filters}).values_list("id", flat=True))
    return listed, queued


@pytest.fixture
def repredicted():
    """An image predicted by an older version as crazing, then by a newer one as inclusion."""
    older, newer = ModelVersionFactory(), ModelVersionFactory()
    image = InspectionImageFactory()
    PredictionFactory(image=image, model_version=older, probabilities={"crazing": 0.9, "inclusion": 0.1},
                      needs_review=True)
    PredictionFactory(image=image, model_version=newer, probabilities={"crazing": 0.2, "inclusion": 0.8})
    return image, older, newer


def test_model_version_is_the_latest_predictions_version_in_the_list_and_the_queue(repredicted):
    image, older, newer = repredicted
    assert _both({"model_version": older.pk}) == (set(), set())
    assert _both({"model_version": newer.pk}) == ({image.pk}, {image.pk})


def test_predicted_label_and_needs_review_follow_the_latest_prediction_in_both(repredicted):
    image, _, _ = repredicted
    assert _both({"predicted_label": "crazing"}) == (set(), set())
    assert _both({"predicted_label": "inclusion"}) == ({image.pk}, {image.pk})
    assert _both({"needs_review": True}) == (set(), set())
    assert _both({"needs_review": False}) == ({image.pk}, {image.pk})


def test_reviewed_and_label_mean_the_same_in_both():
    crazing = DefectClass.objects.get(name="crazing")
    reviewed = InspectionImageFactory(label=crazing, label_source=LabelSource.REVIEW)
    imported = InspectionImageFactory(label=crazing, label_source=LabelSource.IMPORT)
    unlabelled = InspectionImageFactory()
    assert _both({"reviewed": "reviewed"})[0] == {reviewed.pk}
    assert review_selectors.image_list(filters={"reviewed": "unreviewed"}).filter(pk=reviewed.pk).count() == 0
    assert _both({"label": ""}) == ({unlabelled.pk}, {unlabelled.pk})
    assert _both({"label": "crazing"}) == ({reviewed.pk, imported.pk}, {reviewed.pk, imported.pk})
