"""Every error leaves the API as {"error": {"code", "message", "details"}} with the right status."""

from __future__ import annotations

import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inspections.models import InspectionImage
from inspections.review import selectors as review_selectors
from tests.factories import InspectionImageFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_bad_filter_value_is_400_naming_the_parameter():
    error = assert_error(client_for("viewer").get("/api/v1/images/?status=sparkling"), 400, "invalid")
    assert list(error["details"]) == ["status"]


def test_malformed_json_is_a_parse_error():
    image = InspectionImageFactory()
    response = client_for("qa").post(f"/api/v1/images/{image.pk}/reviews/", data='{"label": ', content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_unsupported_content_type_is_415():
    image = InspectionImageFactory()
    response = client_for("qa").post(f"/api/v1/images/{image.pk}/reviews/", data="label=x", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_anonymous_is_401_with_a_token_challenge():
    response = client_for(None).get("/api/v1/images/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_unknown_token_is_401():
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert_error(client.get("/api/v1/images/"), 401, "authentication_failed")


def test_missing_role_is_403():
    assert_error(client_for("viewer").post("/api/v1/classes/", {"name": "dent"}, format="json"), 403, "permission_denied")


def test_unknown_image_is_404():
    assert_error(client_for("viewer").get("/api/v1/images/999999999/"), 404, "not_found")


def test_unknown_api_path_is_404_json():
    error = assert_error(client_for("viewer").get("/api/v1/no-such-thing/"), 404, "not_found")
    assert "/api/v1/no-such-thing/" in error["message"]


def test_unsupported_method_is_405():
    image = InspectionImageFactory()
    response = client_for("ml_admin").delete(f"/api/v1/images/{image.pk}/")
    assert_error(response, 405, "method_not_allowed")
    assert InspectionImage.objects.filter(pk=image.pk).exists()


def test_file_over_the_byte_limit_is_413_and_stores_nothing(settings, media_root):
    settings.STEELQC_MAX_UPLOAD_BYTES = 200
    files_before = sorted(p for p in media_root.rglob("*") if p.is_file())
    upload = SimpleUploadedFile("big.png", image_bytes(seed=7, size=(64, 64)), content_type="image/png")
    error = assert_error(client_for("integrator").post("/api/v1/images/", {"file": upload}, format="multipart"),
                         413, "file_too_large")
    assert "200" in error["message"]
    assert not InspectionImage.objects.exists()
    assert sorted(p for p in media_root.rglob("*") if p.is_file()) == files_before


def test_over_the_rate_is_429_with_retry_after(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"read": "2/min", "upload": "2/min", "write": "2/min"}}
    client = client_for("viewer")
    assert [client.get("/api/v1/classes/").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/classes/")
    error = assert_error(response, 429, "throttled")
    assert 0 < error["details"]["retry_after_s"] <= 60
    assert 0 < int(response["Retry-After"]) <= 60
    assert client_for("viewer").get("/api/v1/classes/").status_code == 200  # the rate is per user


def test_scopes_are_counted_separately(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"read": "1/min", "upload": "100/min", "write": "100/min"}}
    client = client_for("qa")
    assert client.get("/api/v1/classes/").status_code == 200
    assert client.get("/api/v1/classes/").status_code == 429
    assert client.post("/api/v1/classes/", {"name": "dent"}, format="json").status_code == 201


def test_unhandled_error_is_500_json_and_logged(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(review_selectors, "image_list", broken)
    with caplog.at_level(logging.ERROR, logger="inspections.api"):
        response = client_for("viewer").get("/api/v1/images/")
    error = assert_error(response, 500, "server_error")
    assert "disk on fire" not in error["message"]  # no internals in the body
    assert any("disk on fire" in (r.exc_text or "") or (r.exc_info and "disk on fire" in str(r.exc_info[1]))
               for r in caplog.records)
