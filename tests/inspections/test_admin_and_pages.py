import pytest
from django.urls import reverse

from inspections.models import (
    DatasetSnapshot, DefectClass, InspectionImage, ModelVersion, Prediction, Review, TrainingRun,
)
from tests.factories import InspectionImageFactory, UserFactory

pytestmark = pytest.mark.django_db
MODELS = [DefectClass, InspectionImage, Review, Prediction, ModelVersion, TrainingRun, DatasetSnapshot]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_domain_model_has_an_admin_list(admin_client, model):
    url = reverse(f"admin:inspections_{model._meta.model_name}_changelist")
    assert admin_client.get(url).status_code == 200


def test_reviews_cannot_be_edited_or_deleted_in_the_admin(admin_client):
    image = InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import")
    review = Review.objects.create(image=image, label=DefectClass.objects.get(name="patches"),
                                   previous_label=image.label, reviewer=UserFactory())
    assert admin_client.get(reverse("admin:inspections_review_add")).status_code == 403
    delete = admin_client.post(reverse("admin:inspections_review_delete", args=[review.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert Review.objects.filter(pk=review.pk).exists()


def test_home_page_needs_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_home_page_shows_counts_per_label(client):
    InspectionImageFactory.create_batch(2, label=DefectClass.objects.get(name="scratches"), label_source="import", split="train")
    client.force_login(UserFactory(roles=["viewer"]))
    response = client.get("/")
    assert response.status_code == 200
    assert b"scratches" in response.content
    assert b"2 images" in response.content
