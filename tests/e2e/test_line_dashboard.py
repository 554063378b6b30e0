"""In Chromium: the dashboard's line section shows, per source, what classify/ saw over the last
hour and the last 24 hours -- figures summed from the stored line counts -- with no policy
violation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from inspections.line.services.stats import Seen, line_minute_record
from tests.factories import ModelVersionFactory

from .conftest import log_in, screenshot
from .test_content_security_policy import _watch

# Every app listed: Django then creates the migrations' rows (content types, permissions) when
# the test starts and does not recreate them in the flush after it, so the serialized_rollback
# browser tests that run next load their saved rows into the empty tables they expect.
pytestmark = pytest.mark.django_db(transaction=True,
                                   available_apps=[config.name for config in apps.get_app_configs()])


def _seen(label, confidence, reasons=(), kept=False, latency=5.0) -> Seen:
    return Seen(label=label, confidence=confidence, review_reasons=tuple(reasons), kept=kept, latency_ms=latency)


def test_the_dashboard_shows_each_sources_line_counts(page, users):
    version = ModelVersionFactory()
    now = timezone.now()
    # Last hour, two batches of strip-a (two minutes, two versions' worth of rows): 8 images.
    line_minute_record(source="strip-a", model_version_id=version.pk, now=now - timedelta(minutes=5), rows=[
        _seen("crazing", 0.97), _seen("crazing", 0.93), _seen("crazing", 0.91, latency=3.0),
        _seen("inclusion", 0.88), _seen("inclusion", 0.35, ["low_confidence"], kept=True, latency=12.0),
    ])
    line_minute_record(source="strip-a", model_version_id=None, now=now - timedelta(minutes=20), rows=[
        _seen("patches", 0.15, ["foreign", "low_confidence"], kept=True, latency=7.0),
        _seen("crazing", 0.99, kept=True), _seen("crazing", 0.95),
    ])
    # Five hours ago: only in the last 24 hours.
    line_minute_record(source="strip-a", model_version_id=version.pk, now=now - timedelta(hours=5), rows=[
        _seen("scratches", 0.96), _seen("scratches", 0.97)])
    line_minute_record(source="strip-b", model_version_id=version.pk, now=now - timedelta(hours=3), rows=[
        _seen("inclusion", 0.92)])
    users("viewer", "line-viewer")
    violations = _watch(page)

    log_in(page, "line-viewer")
    page.goto("/dashboard/")
    hour = page.locator('#line-stats tr[data-line-source="strip-a"][data-period="hour"]')
    assert hour.locator('[data-metric="seen"]').inner_text() == "8"
    assert hour.locator('[data-metric="kept"]').inner_text() == "3"
    assert hour.locator('[data-metric="kept-share"]').inner_text() == "(37.5%)"
    assert hour.locator('[data-metric="flagged"]').inner_text() == "2"
    assert hour.locator("[data-reason]").all_inner_texts() == ["low confidence 2", "foreign 1"]
    assert [item.split()[0] for item in hour.locator("[data-class]").all_inner_texts()] == [
        "crazing", "inclusion", "patches"]
    assert hour.locator('[data-class="crazing"]').inner_text().strip() == "crazing 62%"
    assert hour.locator(".line-histogram rect").evaluate_all("rects => rects.map(r => +r.dataset.count)") == [
        0, 1, 0, 1, 0, 0, 0, 0, 1, 5]
    heights = hour.locator(".line-histogram rect").evaluate_all(
        "rects => rects.map(r => r.getBoundingClientRect().height)")
    assert heights[9] > heights[8] > 0 == heights[0]
    assert hour.locator('[data-metric="latency"]').inner_text() == "5.9 / 12.0 ms"

    day = page.locator('#line-stats tr[data-line-source="strip-a"][data-period="day"]')
    assert day.locator('[data-metric="seen"]').inner_text() == "10"
    assert day.locator('[data-metric="kept-share"]').inner_text() == "(30.0%)"
    assert page.locator('#line-stats tr[data-line-source="strip-b"]').count() == 1
    assert page.locator('#line-stats tr[data-line-source="strip-b"][data-period="day"] [data-metric="seen"]'
                        ).inner_text() == "1"
    screenshot(page, "dashboard-line.png", full_page=True)
    assert violations == []
