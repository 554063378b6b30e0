"""LineMinute: one upsert per batch, counts merged key by key, no increment lost under
concurrent workers; GET line-stats/ reads them."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connections
from django.utils import timezone

from inspections.line.services.stats import Seen, confidence_bin, line_minute_record, line_stats
from inspections.models import LineMinute
from tests.factories import ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for

NOW = datetime(2026, 12, 1, 10, 30, 42, tzinfo=dt_timezone.utc)


def _seen(label="crazing", confidence=0.95, reasons=(), kept=False, latency=4.0) -> Seen:
    return Seen(label=label, confidence=confidence, review_reasons=tuple(reasons), kept=kept, latency_ms=latency)


@pytest.mark.django_db
def test_batches_of_one_minute_merge_into_one_row():
    version = ModelVersionFactory()
    line_minute_record(source="a", model_version_id=version.pk, now=NOW, rows=[
        _seen(), _seen("inclusion", 0.42, ["low_confidence"], kept=True, latency=9.0)])
    line_minute_record(source="a", model_version_id=version.pk, now=NOW + timedelta(seconds=10), rows=[
        _seen("inclusion", 0.2, ["low_confidence", "foreign"], kept=True, latency=2.0), _seen(confidence=1.0)])
    row = LineMinute.objects.get()
    assert row.minute == NOW.replace(second=0)
    assert (row.seen, row.kept, row.flagged) == (4, 2, 2)
    assert row.per_class == {"crazing": 2, "inclusion": 2}
    assert row.per_reason == {"low_confidence": 2, "foreign": 1}
    assert row.confidence_histogram == [0, 0, 1, 0, 1, 0, 0, 0, 0, 2]
    assert row.latency_ms_sum == pytest.approx(19.0) and row.latency_ms_max == 9.0


@pytest.mark.django_db
def test_rows_are_per_source_minute_and_version_and_a_null_version_counts_once():
    first, second = ModelVersionFactory(), ModelVersionFactory()
    for source, version, now in [("a", first, NOW), ("b", first, NOW), ("a", second, NOW),
                                 ("a", first, NOW + timedelta(minutes=1)), ("a", None, NOW), ("a", None, NOW)]:
        line_minute_record(source=source, model_version_id=version.pk if version else None, now=now, rows=[_seen()])
    assert LineMinute.objects.count() == 5
    assert LineMinute.objects.get(source="a", minute=NOW.replace(second=0), model_version=None).seen == 2


def test_confidence_bins_cover_zero_to_one():
    assert [confidence_bin(c) for c in (0.0, 0.05, 0.1, 0.55, 0.999, 1.0, 1.2, -0.1)] == [0, 0, 1, 5, 9, 9, 9, 0]


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_lose_no_increment():
    version = ModelVersionFactory()

    def worker(index: int) -> None:
        try:
            for _ in range(10):
                line_minute_record(source="line", model_version_id=version.pk, now=NOW,
                                   rows=[_seen(label=f"c{index % 3}"), _seen(reasons=["foreign"], kept=True)])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    row = LineMinute.objects.get()
    assert (row.seen, row.kept, row.flagged) == (120, 60, 60)
    assert row.per_class == {"c0": 20, "c1": 20, "c2": 20, "crazing": 60}
    assert sum(row.confidence_histogram) == 120


@pytest.mark.django_db
def test_line_stats_api_sums_versions_and_filters_by_source_and_time():
    now = timezone.now()
    first, second = ModelVersionFactory(), ModelVersionFactory()
    line_minute_record(source="a", model_version_id=first.pk, now=now, rows=[_seen(latency=2.0)])
    line_minute_record(source="a", model_version_id=second.pk, now=now, rows=[_seen(kept=True, latency=4.0)])
    line_minute_record(source="b", model_version_id=first.pk, now=now, rows=[_seen()])
    line_minute_record(source="a", model_version_id=first.pk, now=now - timedelta(hours=3), rows=[_seen()])
    client = client_for("viewer")
    body = client.get("/api/v1/line-stats/", {"source": "a"}).json()
    assert (body["resolution"], len(body["buckets"])) == ("minute", 1)
    minute = body["buckets"][0]
    assert (minute["seen"], minute["kept"], minute["latency_ms_mean"]) == (2, 1, 3.0)
    assert sorted(minute["model_versions"]) == sorted([first.pk, second.pk])
    assert len(client.get("/api/v1/line-stats/").json()["buckets"]) == 2
    since = (now - timedelta(hours=4)).isoformat()
    assert len(client.get("/api/v1/line-stats/", {"source": "a", "since": since}).json()["buckets"]) == 2
    assert line_stats(source="b")[0]["seen"] == 1
    old = (now - timedelta(days=30)).isoformat()
    refused = client.get("/api/v1/line-stats/", {"since": old, "resolution": "minute"})
    assert "since" in assert_error(refused, 400, "invalid")["details"]
