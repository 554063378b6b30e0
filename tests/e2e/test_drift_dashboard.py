"""In Chromium: a QA lead opening the dashboard while a source is in drift alert sees the banner
saying so, and the drift table and chart of that source, with no policy violation."""

from __future__ import annotations

import pytest
from django.utils import timezone

from inspections.models import DefectClass, DriftAlert, ModelVersionStatus, Prediction
from tests.factories import InspectionImageFactory, ModelVersionFactory

from .conftest import log_in, screenshot
from .test_content_security_policy import _watch

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_dashboard_shows_the_drift_banner_and_table(page, users):
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, promoted_at=timezone.now(),
                                  metrics={"split": "test", "review": {"reasons": {"foreign": 0.05}}})
    crazing = DefectClass.objects.get_or_create(name="crazing")[0]
    for foreign in (True, True, False, False, False, False, False, False, False, False):
        Prediction.objects.create(
            image=InspectionImageFactory(source="camera-east"), model_version=version, label=crazing,
            confidence=0.9, probabilities={"crazing": 0.9}, needs_review=foreign, ood_score=2.0 if foreign else 0.2,
            review_reasons=["foreign"] if foreign else [])
    DriftAlert.objects.create(source="camera-east", model_version=version, opened_at=timezone.now(), window_hours=24,
                              threshold=0.2, foreign_share=0.23, image_count=10, baseline_foreign_share=0.05)
    users("qa", "qa-lead")
    violations = _watch(page)

    log_in(page, "qa-lead")
    page.goto("/dashboard/")
    banner = page.locator("#drift-alerts")
    assert banner.is_visible()
    assert ("source camera-east: 23% of images unlike training over the last 24 hours (baseline 5%)"
            in banner.inner_text())
    row = page.locator("#drift-table tbody tr").first
    assert row.locator("td").nth(1).inner_text() == "camera-east"
    assert [row.locator("td").nth(i).inner_text() for i in (2, 3)] == ["10", "20.0%"]
    assert page.locator('svg[aria-label="Share of images unlike training per day, source camera-east"]').is_visible()
    screenshot(page, "dashboard-drift.png", full_page=True)
    assert violations == []
