"""GET schema/ is a valid OpenAPI 3 document naming every endpoint; GET docs/ needs no CDN."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db

EXPECTED_OPERATIONS = {
    ("/api/v1/images/", "get"), ("/api/v1/images/", "post"), ("/api/v1/images/{image_id}/", "get"),
    ("/api/v1/images/{image_id}/reviews/", "get"), ("/api/v1/images/{image_id}/reviews/", "post"),
    ("/api/v1/images/{image_id}/file/", "get"), ("/api/v1/classes/", "get"), ("/api/v1/classes/", "post"),
    ("/api/v1/model-versions/", "get"), ("/api/v1/model-versions/{version_id}/", "get"),
    ("/api/v1/model-versions/{version_id}/promote/", "post"), ("/api/v1/model-versions/rollback/", "post"),
    ("/api/v1/training-runs/", "get"), ("/api/v1/training-runs/", "post"),
    ("/api/v1/training-runs/{run_id}/", "get"), ("/api/v1/training-runs/{run_id}/cancel/", "post"),
}


@pytest.fixture
def document() -> dict:
    response = client_for("viewer").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_schema_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate(document)  # raises on an invalid document


def test_schema_lists_every_endpoint(document):
    operations = {(path, method) for path, item in document["paths"].items() for method in item}
    assert EXPECTED_OPERATIONS <= operations


def test_schema_documents_the_error_shape_and_token_auth(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(document["components"]["schemas"]["ErrorDetail"]["properties"]) == {"code", "message", "details"}
    assert "tokenAuth" in document["components"]["securitySchemes"]
    upload = document["paths"]["/api/v1/images/"]["post"]
    assert {"400", "413"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]


def test_schema_lists_the_image_filters(document):
    names = {p["name"] for p in document["paths"]["/api/v1/images/"]["get"]["parameters"]}
    assert {"status", "label", "needs_review", "model_version", "created_after", "created_before", "source",
            "external_id", "split", "page", "page_size"} <= names


def test_swagger_ui_is_served_from_local_static_files():
    response = client_for("viewer").get("/api/v1/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    # Swagger UI's start-up script is a file (the CSP allows no inline script); it names the schema.
    script = client_for("viewer").get("/api/v1/docs/?script=")
    assert "/api/v1/schema/" in script.content.decode()


def test_swagger_ui_assets_exist_in_static_files():
    from django.contrib.staticfiles import finders

    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
