"""The dashboard's drift section: a chart per source against the baseline, the day/source table,
and a banner per open drift alert."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from inspections.models import DefectClass, DriftAlert, ModelVersionStatus, Prediction
from tests.factories import InspectionImageFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def active():
    return ModelVersionFactory(status=ModelVersionStatus.ACTIVE, promoted_at=timezone.now(), metrics={
        "split": "test", "review": {"reasons": {"foreign": 0.05}},
        "per_class": {"crazing": {"support": 3}, "inclusion": {"support": 1}}})


def predicted(version, source: str, label: str, foreign: bool) -> None:
    Prediction.objects.create(
        image=InspectionImageFactory(source=source), model_version=version,
        label=DefectClass.objects.get_or_create(name=label)[0], confidence=0.9, probabilities={label: 0.9},
        needs_review=foreign, ood_score=2.0 if foreign else 0.2, review_reasons=["foreign"] if foreign else [])


def test_the_table_and_the_chart_show_each_source_against_the_baseline(client, role_user, active):
    for label, foreign in (("crazing", True), ("inclusion", False), ("inclusion", False), ("inclusion", False)):
        predicted(active, "line-1", label, foreign)
    client.force_login(role_user("viewer"))
    html = client.get("/dashboard/").content.decode()
    assert "Baseline: 5.0% flagged foreign (measured on the test split)" in html
    assert "class mix of the test split: crazing 75%, inclusion 25%" in html
    table = html[html.index('id="drift-table"'):]
    row = re.search(r"<tr><td>[0-9-]{10}</td><td>line-1</td>(.*?)</tr>", table).group(1)
    assert row == "<td>4</td><td>25.0%</td><td>50.0%</td><td>inclusion 75%, crazing 25%</td>"
    assert 'aria-label="Share of images unlike training per day, source line-1"' in html
    assert '<polyline class="series-baseline"' in html
    assert 'id="drift-alerts"' not in html


def test_an_open_alert_is_a_banner_naming_the_source_share_window_and_baseline(client, role_user, active):
    DriftAlert.objects.create(source="line-3", model_version=active, opened_at=timezone.now(), window_hours=48,
                              threshold=0.2, foreign_share=0.23, image_count=60, baseline_foreign_share=0.05)
    DriftAlert.objects.create(source="line-4", opened_at=timezone.now(), closed_at=timezone.now(), window_hours=24,
                              threshold=0.2, foreign_share=0.5, image_count=60)
    client.force_login(role_user("qa"))
    html = client.get("/dashboard/").content.decode()
    banner = html[html.index('id="drift-alerts"'):html.index("</div>", html.index('id="drift-alerts"'))]
    assert "source line-3: 23% of images unlike training over the last 48 hours (baseline 5%)" in banner
    assert "line-4" not in banner  # closed


def test_without_an_active_version_the_section_says_so(client, role_user):
    client.force_login(role_user("viewer"))
    html = client.get("/dashboard/").content.decode()
    drift = html[html.index('id="drift-title"'):]
    assert "No model version is active yet." in drift[:600]
