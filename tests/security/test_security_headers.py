"""Every response carries a strict Content-Security-Policy, a Referrer-Policy and a
Permissions-Policy: pages, the login page, Swagger UI, the admin, the API and errors. The browser
side (no violation reported on any page) is tests/e2e/test_content_security_policy.py."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PATHS = ["/", "/accounts/login/", "/dashboard/", "/review/", "/upload/", "/models/", "/training/",
         "/api/v1/docs/", "/api/v1/docs/?script=", "/api/v1/images/", "/admin/", "/admin/auth/user/", "/nowhere/",
         "/healthz"]


@pytest.fixture
def superuser_client(client):
    user = UserFactory(is_superuser=True, is_staff=True)
    user.save()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_the_security_headers(superuser_client, path):
    response = superuser_client.get(path)
    assert response.status_code in (200, 302, 404, 503), response.status_code
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"  # no 'unsafe-inline'
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_swagger_ui_has_no_inline_script_or_style(superuser_client):
    page = superuser_client.get("/api/v1/docs/").content.decode()
    assert "<style" not in page
    assert all('src="' in tag for tag in page.split("<script")[1:])
    script = superuser_client.get("/api/v1/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_pages_templates_hold_no_inline_scripts_styles_or_handlers():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "templates"
    offenders = []
    for path in root.rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<style", r"\sstyle=", r"<script(?![^>]*\ssrc=)", r"\son[a-z]+=\""):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(root)}: {pattern}")
    assert offenders == []
