"""Every endpoint against every role, walked from one table (ARCHITECTURE.md's role table)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from inspections.models import DatasetSnapshot, DatasetSnapshotItem, DefectClass, ModelVersion, Review
from inspections.registry.services.model_versions import model_version_promote
from inspections.review.services.similarity import embedding_bytes
from mlcore.artefact import CLASSES_FILE
from tests.factories import (
    InspectionImageFactory,
    ModelVersionFactory,
    PredictionFactory,
    TrainingRunFactory,
    image_bytes,
)
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

ANYONE = {"viewer", "integrator", "qa", "ml_admin", "superuser"}
UPLOADERS = {"integrator", "qa", "ml_admin", "superuser"}
LABELLERS = {"qa", "ml_admin", "superuser"}
MODEL_ADMINS = {"ml_admin", "superuser"}
ARTEFACT_DOWNLOADERS = {"ml_admin", "integrator", "superuser"}
CALLERS = [None, "viewer", "integrator", "qa", "ml_admin", "superuser"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # formatted with the world's ids
    allowed: set[str]
    success: int
    body: dict = field(default_factory=dict)
    multipart: bool = False


ENDPOINTS = {
    "list images": Endpoint("get", "images/", ANYONE, 200),
    "upload image": Endpoint("post", "images/", UPLOADERS, 201, multipart=True),
    "image detail": Endpoint("get", "images/{image}/", ANYONE, 200),
    "image file": Endpoint("get", "images/{image}/file/", ANYONE, 200),
    "list reviews": Endpoint("get", "images/{image}/reviews/", ANYONE, 200),
    "submit review": Endpoint("post", "images/{image}/reviews/", LABELLERS, 201,
                              {"label": "patches", "expected_version": 0}),
    "list classes": Endpoint("get", "classes/", ANYONE, 200),
    "create class": Endpoint("post", "classes/", LABELLERS, 201, {"name": "edge_crack"}),
    "list model versions": Endpoint("get", "model-versions/", ANYONE, 200),
    "model version detail": Endpoint("get", "model-versions/{candidate}/", ANYONE, 200),
    "promote model version": Endpoint("post", "model-versions/{candidate}/promote/", MODEL_ADMINS, 200),
    "roll back model version": Endpoint("post", "model-versions/rollback/", MODEL_ADMINS, 200),
    # The same version twice: an allowed role gets past the permission check to the input check.
    "compare model versions": Endpoint("get", "model-versions/{candidate}/compare/{candidate}/", ANYONE, 400),
    "list training runs": Endpoint("get", "training-runs/", ANYONE, 200),
    "training run detail": Endpoint("get", "training-runs/{run}/", ANYONE, 200),
    # The world holds too little labelled data to train: an allowed role gets past the permission
    # check to the data check (400 not_enough_data); the others are stopped before it.
    "start training run": Endpoint("post", "training-runs/", MODEL_ADMINS, 400, {"parameters": {}}),
    # The world's run has finished: an allowed role reaches the state check (409 not_cancellable).
    "cancel training run": Endpoint("post", "training-runs/{run}/cancel/", MODEL_ADMINS, 409),
    "list model artefacts": Endpoint("get", "model-versions/{candidate}/artefacts/", ARTEFACT_DOWNLOADERS, 200),
    "download model artefact": Endpoint("get", "model-versions/{candidate}/artefacts/classes.json/",
                                        ARTEFACT_DOWNLOADERS, 200),
    "export dataset": Endpoint("get", "dataset-export/", MODEL_ADMINS, 200),
    "export training snapshot": Endpoint("get", "training-runs/{run}/snapshot/", MODEL_ADMINS, 200),
    "similar images": Endpoint("get", "images/{image}/similar/", ANYONE, 200),
    "novelty groups": Endpoint("get", "novelty-groups/", ANYONE, 200),
    "drift": Endpoint("get", "drift/", ANYONE, 200),
    # A JSON body: an allowed role gets past the permission check to the parser (415: classify/ takes
    # multipart files); the others are stopped before it. tests/inspections/api/test_classify.py classifies.
    "classify": Endpoint("post", "classify/", UPLOADERS, 415, {"source": "line-1"}),
    "line stats": Endpoint("get", "line-stats/", ANYONE, 200),
    # The body names no image of the world: an allowed role gets past the permission check to the
    # per-image one (409 no_image_decided); the others are stopped before it.
    "bulk review": Endpoint("post", "reviews/bulk/", LABELLERS, 409,
                            {"images": [{"id": 987654321, "label_version": 0}], "label": "patches"}),
    # Unknown ids: an allowed role gets past the permission check to the lookup (404).
    "undo a review": Endpoint("post", "reviews/987654321/undo/", LABELLERS, 404),
    "undo a bulk review": Endpoint("post", "reviews/bulk/6f1c2b9e-0d4a-4c1e-9a77-3f5b8e2d1c00/undo/", LABELLERS, 404),
    "decision thresholds": Endpoint("get", "model-versions/{candidate}/thresholds/", ANYONE, 200),
    "set decision thresholds": Endpoint("put", "model-versions/{candidate}/thresholds/", MODEL_ADMINS, 200,
                                        {"thresholds": {"crazing": 0.7}}),
    "change decision thresholds": Endpoint("patch", "model-versions/{candidate}/thresholds/", MODEL_ADMINS, 200,
                                           {"thresholds": {"inclusion": 0.4}}),
    "box thresholds": Endpoint("get", "model-versions/{candidate}/box-thresholds/", ANYONE, 200),
    "set box thresholds": Endpoint("put", "model-versions/{candidate}/box-thresholds/", MODEL_ADMINS, 200,
                                   {"thresholds": {"crazing": 0.5}}),
    "change box thresholds": Endpoint("patch", "model-versions/{candidate}/box-thresholds/", MODEL_ADMINS, 200,
                                      {"thresholds": {"inclusion": 0.45}}),
    "list boxes": Endpoint("get", "images/{image}/boxes/", ANYONE, 200),
    # A stale version: an allowed role gets past the permission check to the version check (409).
    "change boxes": Endpoint("post", "images/{image}/boxes/", LABELLERS, 409,
                             {"expected_version": 5, "changes": [{"op": "add", "label": "crazing",
                                                                  "box": [0.1, 0.1, 0.5, 0.5]}]}),
    "OpenAPI schema": Endpoint("get", "schema/", ANYONE, 200),
    "Swagger UI": Endpoint("get", "docs/", ANYONE, 200),
}


@pytest.fixture
def world() -> dict[str, int]:
    """An image with a prediction, a version promoted twice over (so rollback has a target), a run
    with a frozen snapshot; the candidate's artefact holds a class list."""
    image = InspectionImageFactory(label=DefectClass.objects.get(name="crazing"), label_source="import")
    old, current, candidate = ModelVersionFactory(), ModelVersionFactory(), ModelVersionFactory()
    model_version_promote(version=old)
    model_version_promote(version=current)
    PredictionFactory(image=image, model_version=current, embedding=embedding_bytes([1.0] * 8))
    default_storage.save(f"{candidate.artifact_path}/{CLASSES_FILE}", ContentFile(b'["crazing", "inclusion"]'))
    snapshot = DatasetSnapshot.objects.create(image_count=1, counts={"crazing": {"train": 1}}, checksum="0" * 64)
    DatasetSnapshotItem.objects.create(snapshot=snapshot, image=image, label=image.label, split="train")
    return {"image": image.pk, "candidate": candidate.pk, "run": TrainingRunFactory(snapshot=snapshot).pk}


def _call(client, endpoint: Endpoint, world: dict[str, int]):
    url = "/api/v1/" + endpoint.path.format(**world)
    if endpoint.multipart:
        upload = SimpleUploadedFile("strip.png", image_bytes(seed=4242), content_type="image/png")
        return client.post(url, {"file": upload}, format="multipart")
    if endpoint.method == "post":
        return client.post(url, endpoint.body, format="json")
    if endpoint.method in ("put", "patch"):
        return getattr(client, endpoint.method)(url, endpoint.body, format="json")
    return client.get(url)


@pytest.mark.parametrize("caller", CALLERS, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("name", ENDPOINTS)
def test_role_matrix(name, caller, world):
    endpoint = ENDPOINTS[name]
    response = _call(client_for(caller), endpoint, world)
    if caller is None:
        assert response.status_code == 401
    elif caller in endpoint.allowed:
        assert response.status_code == endpoint.success, response.content[:400]
    else:
        assert_error(response, 403, "permission_denied")


# A token's scope beside the role: every scope reads; upload adds what uploaders may do, review
# what labellers may do, admin everything. The caller (ml_admin) has every role right, so the
# scope alone decides.
SCOPE_EXTRA = {"read": [], "upload": [UPLOADERS], "review": [LABELLERS], "admin": [UPLOADERS, LABELLERS, MODEL_ADMINS]}
WRITES = [name for name, endpoint in ENDPOINTS.items() if endpoint.method != "get"]


def _scope_allows(scope: str, endpoint: Endpoint) -> bool:
    return endpoint.method == "get" or any(endpoint.allowed == allowed for allowed in SCOPE_EXTRA[scope])


@pytest.mark.parametrize("scope", list(SCOPE_EXTRA))
@pytest.mark.parametrize("name", WRITES)
def test_scope_matrix_for_writes(name, scope, world):
    endpoint = ENDPOINTS[name]
    response = _call(client_for("ml_admin", scope=scope), endpoint, world)
    if _scope_allows(scope, endpoint):
        assert response.status_code == endpoint.success, response.content[:400]
    else:
        error = assert_error(response, 403, "permission_denied")
        assert f"scope ({scope})" in error["message"]


@pytest.mark.parametrize("name", [name for name in ENDPOINTS if name not in WRITES])
def test_a_read_scope_token_reads_everything_the_role_may(name, world):
    endpoint = ENDPOINTS[name]
    assert _call(client_for("ml_admin", scope="read"), endpoint, world).status_code == endpoint.success


@pytest.mark.parametrize(("role", "scope", "name"), [
    ("viewer", "upload", "upload image"), ("integrator", "review", "submit review"),
    ("qa", "admin", "promote model version"), ("viewer", "read", "export dataset"),
])
def test_scope_never_widens_the_role(role, scope, name, world):
    error = assert_error(_call(client_for(role, scope=scope), ENDPOINTS[name], world), 403, "permission_denied")
    assert "role" in error["message"]


def test_the_table_covers_every_api_route():
    from django.urls import resolve

    from inspections.api.urls import urlpatterns

    named = {pattern.name for pattern in urlpatterns if pattern.name}
    ids = {"image": 1, "candidate": 1, "run": 1}
    exercised = {resolve("/api/v1/" + e.path.format(**ids)).url_name for e in ENDPOINTS.values()}
    assert len(named) >= 14
    assert exercised == named


def test_forbidden_review_writes_nothing(world):
    response = _call(client_for("integrator"), ENDPOINTS["submit review"], world)
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_forbidden_promotion_changes_nothing(world):
    active_before = ModelVersion.objects.get(status="active").pk
    response = _call(client_for("qa"), ENDPOINTS["promote model version"], world)
    assert response.status_code == 403
    assert ModelVersion.objects.get(status="active").pk == active_before


def test_user_without_any_role_reads_nothing():
    from rest_framework.test import APIClient

    from inspections.access.services.api_tokens import api_token_create
    from tests.factories import UserFactory

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=UserFactory(), name='test').secret}")
    assert_error(client.get("/api/v1/images/"), 403, "permission_denied")
