"""The comparison page in a browser: it says "computing…", draws itself when the predictions are
ready (static/js/compare.js polls the API, no inline script), and a disagreement opens the review view."""

from __future__ import annotations

import pytest

from tests.inspections.api.test_version_comparison_api import _run_queued, versions  # noqa: F401 (fixture)

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_page_waits_for_the_worker_then_shows_both_versions_and_links_to_review(page, users, versions, no_queue):
    first, second = versions
    users("viewer", "viewer-ada")
    log_in(page, "viewer-ada")
    page.goto(f"/models/compare/?a={first.pk}&b={second.pk}")
    assert "computing" in page.locator("#compare-computing").inner_text()
    assert _run_queued(no_queue) == "ready"  # what the inference worker does with the message

    page.wait_for_selector("#per-class")  # the page reloaded by itself
    assert page.locator("#comparison").get_attribute("data-status") == "ready"
    assert page.locator("#per-class tbody tr").count() == len(first.classes)
    assert page.locator("#per-class td.delta.worse").count() >= 1
    assert page.locator("table.matrix").count() == 3
    assert page.locator("#disagreements li").count() == 20
    screenshot(page, "version-comparison.png", full_page=True)

    link = page.locator("#disagreements a").first
    image_id = link.get_attribute("data-image")
    link.click()
    page.wait_for_url(f"**/review/{image_id}/")
    assert page.locator("#review-image").is_visible()
