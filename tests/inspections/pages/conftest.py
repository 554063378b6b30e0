"""Helpers for the page tests: role users, images with predictions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from inspections.access.roles import ROLES
from inspections.models import DefectClass, ImageStatus, Prediction
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.factories import InspectionImageFactory, ModelVersionFactory, UserFactory


@pytest.fixture
def role_user(db):
    def make(role: str):
        for name in ROLES:  # transactional tests flush the groups the migrations made
            Group.objects.get_or_create(name=name)
        if role == "superuser":
            user = UserFactory(is_superuser=True, is_staff=True)
            user.save()  # keep the password the factory set (it saves only when roles are given)
            return user
        return UserFactory(roles=[role])

    return make


@pytest.fixture
def predicted_image(db):
    """An image with one prediction: ``predicted_image(probabilities, needs_review=..., **image_fields)``."""

    def make(probabilities: dict[str, float], *, needs_review: bool = False, version=None, **image_fields):
        version = version or ModelVersionFactory()
        image = InspectionImageFactory(status=ImageStatus.PREDICTED, **image_fields)
        best = max(probabilities, key=probabilities.get)
        ranked = sorted(probabilities.values(), reverse=True)
        Prediction.objects.create(
            image=image, model_version=version, label=DefectClass.objects.get_or_create(name=best)[0],
            confidence=ranked[0], probabilities=probabilities, needs_review=needs_review, ood_score=0.2,
            margin=ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0),
        )
        images_latest_prediction_refresh(image_ids=[image.pk])
        return image

    return make
