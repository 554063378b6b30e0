"""The upload page: login required, upload roles only, CSRF-protected uploads (the browser test is
tests/e2e/test_upload_page.py)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from inspections.models import InspectionImage
from tests.factories import UserFactory, image_bytes

pytestmark = pytest.mark.django_db


def test_upload_page_needs_login(client):
    response = client.get("/upload/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize("role", ["viewer", None])
def test_upload_page_is_refused_without_an_upload_role(client, role):
    user = UserFactory(roles=[role] if role else [])
    user.save()  # the factory saves the password only when it adds roles
    client.force_login(user)
    assert client.get("/upload/").status_code == 403


@pytest.mark.parametrize("role", ["qa", "ml_admin", "integrator"])
def test_upload_roles_get_the_page(client, role):
    """What the page does in a browser is tests/e2e/test_upload_page.py."""
    client.force_login(UserFactory(roles=[role]))
    response = client.get("/upload/")
    assert response.status_code == 200
    assert 'data-api-url="/api/v1/images/"' in response.content.decode()


def test_session_upload_without_csrf_token_is_refused():
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(UserFactory(roles=["qa"]))
    response = csrf_client.post("/api/v1/images/", {"file": SimpleUploadedFile("a.png", image_bytes(seed=1))})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert not InspectionImage.objects.exists()


def test_session_upload_with_the_pages_csrf_token_is_accepted():
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(UserFactory(roles=["qa"]))
    page = browser.get("/upload/")
    token = page.context["csrf_token"]
    response = browser.post("/api/v1/images/", {"file": SimpleUploadedFile("a.png", image_bytes(seed=2))},
                            HTTP_X_CSRFTOKEN=str(token))
    assert response.status_code == 201, response.content
    assert InspectionImage.objects.get().original_name == "a.png"
