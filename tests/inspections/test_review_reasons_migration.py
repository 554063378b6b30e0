"""Migration 0006 gives predictions made before review reasons existed reasons derived from what
they stored; only flagged ones get any, and needs_review itself is kept."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from inspections.models import Prediction
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db

derive_reasons = importlib.import_module("inspections.migrations.0006_prediction_review_reasons").derive_reasons


def _old(**fields) -> Prediction:
    return PredictionFactory(review_reasons=[], **fields)


def test_old_flagged_predictions_get_the_reasons_their_figures_show():
    foreign = _old(needs_review=True, ood_score=2.0, probabilities={"crazing": 0.95, "patches": 0.05}, margin=0.9)
    hesitant = _old(needs_review=True, ood_score=0.3, probabilities={"crazing": 0.55, "patches": 0.45}, margin=0.1)
    both = _old(needs_review=True, ood_score=1.5, probabilities={"crazing": 0.5, "patches": 0.5}, margin=0.0)
    untold = _old(needs_review=True, ood_score=0.3, probabilities={"crazing": 0.9, "patches": 0.1}, margin=0.8)
    accepted = _old(needs_review=False, ood_score=3.0, probabilities={"crazing": 0.5, "patches": 0.5}, margin=0.0)
    derive_reasons(apps, None)
    reasons = dict(Prediction.objects.values_list("id", "review_reasons"))
    assert reasons[foreign.pk] == ["foreign"]
    assert reasons[hesitant.pk] == ["low_confidence"]
    assert reasons[both.pk] == ["foreign", "low_confidence"]
    assert reasons[untold.pk] == [] and Prediction.objects.get(pk=untold.pk).needs_review is True
    assert reasons[accepted.pk] == [] and Prediction.objects.get(pk=accepted.pk).needs_review is False
