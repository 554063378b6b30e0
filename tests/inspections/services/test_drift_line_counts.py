"""Drift counts line traffic sent through classify/ from the line counts, besides the prediction
rows of uploaded images -- each image once: a kept classify/ image from its prediction row, one
the policy did not keep from the counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inspections.line.services.drift import drift_alerts_check, drift_report
from inspections.line.services.rollup import line_stats_rollup
from inspections.line.services.stats import Seen, line_minute_record
from inspections.models import DriftAlert
from tests.factories import ModelVersionFactory
from tests.inspections.services.test_drift import active, predict  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _seen(label="crazing", foreign=False, kept=False) -> Seen:
    reasons = ("foreign", "low_confidence") if foreign else ()
    return Seen(label=label, confidence=0.3 if foreign else 0.95, review_reasons=reasons, kept=kept, latency_ms=3.0)


def _classified(version, *, source="strip", at=None, unkept=(), kept=()) -> None:
    """One classify/ batch: ``unkept`` left only counts; each of ``kept`` was stored with its
    prediction, as line_classify keeps an image."""
    at = at or timezone.now()
    line_minute_record(source=source, model_version_id=version.pk, now=at,
                       rows=[_seen(label, foreign) for label, foreign in unkept]
                       + [_seen(label, foreign, kept=True) for label, foreign in kept])
    for label, foreign in kept:
        predict(version, label=label, foreign=foreign, source=source, at=at)


def test_a_kept_classify_image_counts_once_and_unkept_ones_count_from_the_line_counts(active):
    _classified(active, unkept=[("crazing", False), ("crazing", False), ("crazing", True)],
                kept=[("inclusion", True)])
    predict(active, label="crazing", source="strip")  # an upload of the same source

    report = drift_report(days=14)
    (source,) = report["sources"]
    assert (source["source"], source["images"], source["foreign"]) == ("strip", 5, 2)
    assert source["class_mix"] == {"crazing": 0.8, "inclusion": 0.2}
    (today,) = report["days"]
    assert (today["day"], today["images"], today["foreign"]) == (timezone.localdate(), 5, 2)


def test_counts_of_other_versions_are_not_the_active_versions_drift(active):
    _classified(ModelVersionFactory(), unkept=[("crazing", True)] * 4)
    _classified(active, unkept=[("inclusion", False)])
    (source,) = drift_report(days=14)["sources"]
    assert (source["images"], source["foreign"]) == (1, 0)


def test_rolled_up_days_still_count_on_their_day(active):
    five_days_ago = timezone.now() - timedelta(days=5)
    _classified(active, at=five_days_ago, unkept=[("crazing", True), ("inclusion", False)], kept=[("crazing", True)])
    line_stats_rollup()
    report = drift_report(days=14)
    assert [(row["day"], row["images"], row["foreign"]) for row in report["days"]] == [
        (timezone.localdate(five_days_ago), 3, 2)]


def test_a_source_seen_only_through_classify_opens_a_drift_alert(active, settings):
    settings.STEELQC_DRIFT_MIN_IMAGES = 20
    _classified(active, source="strip-9", unkept=[("crazing", True)] * 6 + [("crazing", False)] * 14,
                kept=[("inclusion", True)] * 2)
    changes = drift_alerts_check()
    (alert,) = changes.opened
    assert (alert.source, alert.image_count) == ("strip-9", 22)
    assert alert.foreign_share == pytest.approx(8 / 22)
    assert DriftAlert.objects.filter(closed_at__isnull=True).count() == 1


def test_too_few_classify_images_open_no_alert(active, settings):
    settings.STEELQC_DRIFT_MIN_IMAGES = 20
    _classified(active, source="strip-9", unkept=[("crazing", True)] * 19)
    assert drift_alerts_check().opened == []
