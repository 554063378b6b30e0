"""The version page's decision-threshold editor, driven in Chromium."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_ml_admin_changes_a_threshold_and_sees_it_in_the_history(page, users, registered_version):
    from inspections.models import DecisionThresholdChange, ModelVersion

    users("ml_admin", "ml-tess")
    log_in(page, "ml-tess")
    page.goto(f"/models/{registered_version.pk}/#thresholds")
    section = page.locator("#thresholds")
    assert "Decision thresholds" in section.inner_text()
    assert section.locator("svg.threshold-chart").count() == 2  # a curve per class, from training
    assert page.locator("#threshold-history-empty").is_visible()

    marker = page.locator('tr[data-class="crazing"] .threshold-marker')
    at_default = float(marker.get_attribute("x1"))
    page.fill("#threshold-crazing", "0.85")
    assert float(marker.get_attribute("x1")) > at_default  # the chosen point follows the input
    page.fill("#threshold-note", "cracks must not slip through")
    page.click("#thresholds-save")

    history = page.locator("#threshold-history")
    history.wait_for()
    row = history.locator("tbody tr").first.inner_text()
    assert "crazing" in row and "0.6 → 0.85" in row and "cracks must not slip through" in row and "ml-tess" in row
    assert page.locator("#threshold-crazing").input_value() == "0.85"
    assert ModelVersion.objects.get(pk=registered_version.pk).decision_thresholds == {"crazing": 0.85}
    assert DecisionThresholdChange.objects.filter(model_version=registered_version).count() == 1
    screenshot(page, "decision-thresholds.png", full_page=True)


def test_a_bad_value_is_refused_and_a_viewer_cannot_edit(page, users, registered_version):
    from inspections.models import DecisionThresholdChange

    users("ml_admin", "ml-ugo")
    log_in(page, "ml-ugo")
    page.goto(f"/models/{registered_version.pk}/")
    # The browser's own range check is bypassed to reach the server's.
    page.evaluate("document.getElementById('thresholds-form').noValidate = true")
    page.fill("#threshold-inclusion", "1.5")
    page.click("#thresholds-save")
    assert "from 0.01 to 1" in page.locator(".messages").inner_text()
    assert not DecisionThresholdChange.objects.exists()

    page.context.clear_cookies()
    users("viewer", "vi-vera")
    log_in(page, "vi-vera")
    page.goto(f"/models/{registered_version.pk}/")
    assert "Decision thresholds" in page.locator("#thresholds").inner_text()
    assert page.locator("#thresholds input.threshold-input").count() == 0
    assert page.locator("#thresholds-save").count() == 0
