"""Model versions in the API carry their kind; rollback takes the kind to roll back."""

from __future__ import annotations

import pytest

from inspections.models import ModelVersionStatus
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import AnomalyVersionFactory, ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_versions_carry_their_kind():
    ModelVersionFactory(number=1)
    AnomalyVersionFactory(number=2)
    listed = client_for("viewer").get("/api/v1/model-versions/").json()["results"]
    assert {row["number"]: row["kind"] for row in listed} == {1: "classifier", 2: "anomaly"}


def test_rollback_of_the_anomaly_kind_leaves_the_classifier(no_queue):
    classifier = model_version_promote(version=ModelVersionFactory())
    first = model_version_promote(version=AnomalyVersionFactory())
    model_version_promote(version=AnomalyVersionFactory())
    response = client_for("ml_admin").post("/api/v1/model-versions/rollback/", {"kind": "anomaly"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["id"], response.json()["kind"]) == (first.pk, "anomaly")
    classifier.refresh_from_db()
    assert classifier.status == ModelVersionStatus.ACTIVE


def test_rollback_of_an_unknown_kind_is_refused():
    response = client_for("ml_admin").post("/api/v1/model-versions/rollback/", {"kind": "regressor"}, format="json")
    assert_error(response, 400)


def test_an_anomaly_run_starts_through_the_api_with_its_kind(tmp_path, no_queue):
    from inspections.catalog.services.dataset_import import dataset_import_folder
    from tests.data import good_and_defect_folders

    good_and_defect_folders(tmp_path / "data", good=30, defects=2)
    dataset_import_folder(root=tmp_path / "data")
    admin = client_for("ml_admin")
    refused = admin.post("/api/v1/training-runs/", {"kind": "anomaly", "parameters": {"head_epochs": 5}}, format="json")
    assert_error(refused, 400, "invalid_parameter")
    response = admin.post("/api/v1/training-runs/", {"kind": "anomaly", "parameters": {"false_alarm_rate": 0.2}},
                          format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["kind"] == "anomaly" and body["parameters"]["false_alarm_rate"] == 0.2
    assert admin.get(f"/api/v1/training-runs/{body['id']}/").json()["kind"] == "anomaly"


def test_images_can_be_listed_by_anomaly_score():
    """?order=anomaly: highest score first, newest first among equal scores, unscored images last."""
    from inspections.models import InspectionImage
    from tests.factories import InspectionImageFactory

    images = [InspectionImageFactory() for _ in range(4)]
    for image, score in zip(images, (0.4, None, 3.2, 0.4)):
        InspectionImage.objects.filter(pk=image.pk).update(latest_anomaly_score=score)
    client = client_for("viewer")
    by_anomaly = [row["id"] for row in client.get("/api/v1/images/", {"order": "anomaly"}).json()["results"]]
    assert by_anomaly == [images[2].pk, images[3].pk, images[0].pk, images[1].pk]
    newest = [row["id"] for row in client.get("/api/v1/images/").json()["results"]]
    assert newest == [image.pk for image in reversed(images)]
    assert_error(client.get("/api/v1/images/", {"order": "loudest"}), 400)
