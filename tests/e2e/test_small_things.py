"""Small things a new user meets on every page: no 404 in the console (the favicon), and Swagger UI
has a way back to the app."""

from __future__ import annotations

import pytest

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_pages_and_swagger_load_without_a_404_and_swagger_links_back(page, users):
    users("qa", "qa-rita")
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    log_in(page, "qa-rita")
    for url in ("/", "/review/", "/api/v1/docs/", "/favicon.ico"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    assert missing == []
    assert page.evaluate("document.contentType") == "image/svg+xml"  # /favicon.ico leads to the icon
    page.goto("/api/v1/docs/")
    page.click("#back-to-app")
    page.wait_for_url("**/")
    assert page.locator('[data-nav="queue"]').is_visible()
