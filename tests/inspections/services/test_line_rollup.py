"""The line counts roll up: old minutes into local hours, old hours into local days, with every
count unchanged (per source, version, class, reason, histogram bin), idempotently, and without
losing a batch written into a minute while the roll-up holds it. Reads answer the same from
whichever rows cover the period."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from inspections import task_names
from inspections.line.services.rollup import line_stats_rollup
from inspections.line.services.stats import Seen, bucket_start, line_minute_record, line_stats
from inspections.models import LineMinute, LineResolution
from inspections.ops.services.schedules import PERIODIC_JOBS
from tests.factories import ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for

NOW = datetime(2026, 12, 1, 10, 30, 42, tzinfo=dt_timezone.utc)


def _seen(label="crazing", confidence=0.95, reasons=(), kept=False, latency=4.0) -> Seen:
    return Seen(label=label, confidence=confidence, review_reasons=tuple(reasons), kept=kept, latency_ms=latency)


def _sums() -> dict:
    """(source, version) -> every count of its rows, summed here without the service's code."""
    sums: dict = {}
    for row in LineMinute.objects.all():
        entry = sums.setdefault((row.source, row.model_version_id), {
            "seen": 0, "kept": 0, "flagged": 0, "per_class": Counter(), "per_reason": Counter(),
            "kept_per_class": Counter(), "kept_per_reason": Counter(), "histogram": [0] * 10,
            "latency_ms_sum": 0.0, "latency_ms_max": 0.0})
        for name in ("seen", "kept", "flagged"):
            entry[name] += getattr(row, name)
        for name in ("per_class", "per_reason", "kept_per_class", "kept_per_reason"):
            entry[name].update(getattr(row, name))
        entry["histogram"] = [a + b for a, b in zip(entry["histogram"], row.confidence_histogram)]
        entry["latency_ms_sum"] = round(entry["latency_ms_sum"] + row.latency_ms_sum, 6)
        entry["latency_ms_max"] = max(entry["latency_ms_max"], row.latency_ms_max)
    return sums


def _resolutions() -> Counter:
    return Counter(LineMinute.objects.values_list("resolution", flat=True))


def _line_of_traffic(versions, now) -> None:
    """Batches of two sources and three versions (one of them none) at minutes from now back to
    100 days ago, with classes, reasons, kept images, confidences and latencies that vary."""
    ages = [timedelta(minutes=m) for m in (0, 1, 59, 61)] + [timedelta(days=d, minutes=m) for d, m in (
        (2, 0), (3, 5), (3, 50), (3, 65), (4, 0), (4, 1), (10, 7), (89, 0), (91, 3), (91, 4), (100, 30))]
    for index, age in enumerate(ages):
        for source in ("strip-a", "strip-b"):
            version = versions[index % len(versions)]
            line_minute_record(source=source, model_version_id=version.pk if version else None, now=now - age, rows=[
                _seen(latency=1.0 + index),
                _seen("inclusion", 0.41, ["low_confidence"], kept=True, latency=2.5),
                _seen("patches", 0.05 * index, ["foreign", "low_confidence"], kept=index % 2 == 0, latency=9.0 + index),
            ])


@pytest.mark.django_db
def test_rolling_up_changes_no_count_of_any_source_version_class_reason_or_bin():
    versions = [ModelVersionFactory(), ModelVersionFactory(), None]
    _line_of_traffic(versions, NOW)
    before = _sums()

    steps = line_stats_rollup(now=NOW)

    assert _sums() == before
    assert sum(step.rows_merged for step in steps) > 0
    minute_cutoff, hour_cutoff = steps[0].before, steps[1].before
    assert minute_cutoff == datetime(2026, 11, 28, 10, tzinfo=dt_timezone.utc)
    assert hour_cutoff == datetime(2026, 9, 2, tzinfo=dt_timezone.utc)
    assert not LineMinute.objects.filter(resolution=LineResolution.MINUTE, minute__lt=minute_cutoff).exists()
    assert not LineMinute.objects.filter(resolution=LineResolution.HOUR, minute__lt=hour_cutoff).exists()
    assert set(_resolutions()) == {LineResolution.MINUTE, LineResolution.HOUR, LineResolution.DAY}


@pytest.mark.django_db
def test_minutes_of_one_hour_become_one_row_per_source_and_version():
    version = ModelVersionFactory()
    old = NOW - timedelta(days=5)
    for minute in (2, 17, 59):
        line_minute_record(source="a", model_version_id=version.pk, now=old.replace(minute=minute),
                           rows=[_seen(), _seen("inclusion", 0.3, ["low_confidence"], kept=True, latency=7.0)])
    line_minute_record(source="a", model_version_id=None, now=old, rows=[_seen()])
    line_stats_rollup(now=NOW)
    rows = list(LineMinute.objects.order_by(F("model_version_id").asc(nulls_last=True)))
    assert [(r.resolution, r.minute, r.model_version_id) for r in rows] == [
        ("hour", old.replace(minute=0, second=0), version.pk), ("hour", old.replace(minute=0, second=0), None)]
    hour = rows[0]
    assert (hour.seen, hour.kept, hour.flagged) == (6, 3, 3)
    assert hour.per_class == {"crazing": 3, "inclusion": 3} and hour.kept_per_class == {"inclusion": 3}
    assert hour.kept_per_reason == {"low_confidence": 3}
    assert hour.confidence_histogram == [0, 0, 0, 3, 0, 0, 0, 0, 0, 3]
    assert (hour.latency_ms_sum, hour.latency_ms_max) == (pytest.approx(33.0), 7.0)


@pytest.mark.django_db
def test_a_second_rollup_changes_nothing():
    _line_of_traffic([ModelVersionFactory(), None], NOW)
    line_stats_rollup(now=NOW)
    rows = sorted(LineMinute.objects.values_list("source", "resolution", "minute", "model_version", "seen", "per_class"),
                  key=str)
    steps = line_stats_rollup(now=NOW)
    assert [step.rows_merged for step in steps] == [0, 0]
    assert sorted(LineMinute.objects.values_list("source", "resolution", "minute", "model_version", "seen",
                                                 "per_class"), key=str) == rows


@pytest.mark.django_db
def test_chunks_of_a_few_rows_give_the_same_rows_as_one_chunk():
    version = ModelVersionFactory()
    _line_of_traffic([version], NOW)
    line_stats_rollup(now=NOW, chunk_rows=3)
    small_chunks = sorted(LineMinute.objects.values_list("source", "resolution", "minute", "seen", "per_reason"), key=str)
    LineMinute.objects.all().delete()
    _line_of_traffic([version], NOW)
    line_stats_rollup(now=NOW)
    assert sorted(LineMinute.objects.values_list("source", "resolution", "minute", "seen", "per_reason"),
                  key=str) == small_chunks


@pytest.mark.django_db
def test_hours_and_days_are_the_local_time_zones(settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: local hours start at half past UTC hours
    version = ModelVersionFactory()
    moment = datetime(2026, 6, 1, 20, 10, tzinfo=dt_timezone.utc)  # 01:40 on 2 June in Kolkata
    line_minute_record(source="a", model_version_id=version.pk, now=moment, rows=[_seen()])
    line_stats_rollup(now=moment + timedelta(days=4))
    assert LineMinute.objects.get().minute == datetime(2026, 6, 1, 19, 30, tzinfo=dt_timezone.utc)
    line_stats_rollup(now=moment + timedelta(days=95))
    day = LineMinute.objects.get()
    assert (day.resolution, day.minute) == ("day", datetime(2026, 6, 1, 18, 30, tzinfo=dt_timezone.utc))
    assert bucket_start(moment, LineResolution.DAY) == day.minute


def _wait_for_a_lock_waiter(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the late batch never waited for the roll-up's lock")


@pytest.mark.django_db(transaction=True)
def test_a_batch_written_while_its_minute_is_rolled_up_is_counted_once():
    version = ModelVersionFactory()
    old = timezone.now() - timedelta(days=5)
    line_minute_record(source="a", model_version_id=version.pk, now=old, rows=[_seen(), _seen(), _seen()])
    written = threading.Event()

    def late_batch() -> None:
        try:
            line_minute_record(source="a", model_version_id=version.pk, now=old, rows=[_seen("inclusion", kept=True)])
            written.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=late_batch)
    with transaction.atomic():  # the roll-up's transaction, held open while the batch arrives
        line_stats_rollup()
        thread.start()
        _wait_for_a_lock_waiter()
        assert not written.is_set()
    thread.join(30)
    assert written.is_set()
    assert sorted(LineMinute.objects.values_list("resolution", "seen")) == [("hour", 3), ("minute", 1)]
    line_stats_rollup()
    hour = LineMinute.objects.get()
    assert (hour.resolution, hour.seen, hour.kept, hour.per_class) == ("hour", 4, 1, {"crazing": 3, "inclusion": 1})


def _rounded(buckets: list[dict]) -> list[dict]:
    """Latency sums added in another order differ in the last bits."""
    return [{key: round(value, 6) if isinstance(value, float) else value for key, value in bucket.items()}
            for bucket in buckets]


@pytest.mark.django_db
def test_reads_answer_the_same_before_and_after_the_rollup():
    now = timezone.now()
    _line_of_traffic([ModelVersionFactory(), ModelVersionFactory()], now)
    since = now - timedelta(days=60)
    hours, days = (_rounded(line_stats(since=since, resolution=r, now=now)) for r in ("hour", "day"))
    line_stats_rollup(now=now)
    assert _rounded(line_stats(since=since, resolution="hour", now=now)) == hours
    assert _rounded(line_stats(since=since, resolution="day", now=now)) == days
    assert sum(bucket["seen"] for bucket in days) == 3 * 2 * 11  # the batches of the last 60 days


@pytest.mark.django_db
def test_the_api_picks_the_finest_resolution_that_covers_since_and_refuses_a_finer_one():
    now = timezone.now()
    _line_of_traffic([ModelVersionFactory()], now)
    line_stats_rollup(now=now)
    client = client_for("viewer")

    def get(**params):
        return client.get("/api/v1/line-stats/", {key: value.isoformat() if isinstance(value, datetime) else value
                                                 for key, value in params.items()})

    recent = get(since=now - timedelta(hours=2)).json()
    assert recent["resolution"] == "minute" and recent["truncated"] is False
    assert [b["seen"] for b in recent["buckets"] if b["source"] == "strip-a"] == [3, 3, 3, 3]
    month = get(since=now - timedelta(days=30)).json()
    assert month["resolution"] == "hour"
    assert sum(b["seen"] for b in month["buckets"]) == 2 * 3 * 11
    year = get(since=now - timedelta(days=365), source="strip-b").json()
    assert year["resolution"] == "day"
    assert sum(b["seen"] for b in year["buckets"]) == 3 * 15
    assert {b["source"] for b in year["buckets"]} == {"strip-b"}
    start = datetime.fromisoformat(year["buckets"][-1]["start"])
    assert start == bucket_start(start, "day")
    explicit = get(since=now - timedelta(days=2), resolution="day").json()
    assert explicit["resolution"] == "day"
    assert "since" in assert_error(get(since=now - timedelta(days=30), resolution="minute"), 400, "invalid")["details"]
    assert "since" in assert_error(get(since=now + timedelta(hours=1)), 400, "invalid")["details"]
    assert "resolution" in assert_error(get(resolution="week"), 400, "invalid")["details"]
    assert get(since=datetime(1900, 1, 1, tzinfo=dt_timezone.utc)).json()["resolution"] == "day"


def test_the_rollup_is_a_periodic_job_on_a_registered_task_name():
    from steelqc.celery import app

    job = next(job for job in PERIODIC_JOBS if job.name == "rollup-line-stats")
    assert (job.task, job.interval_setting) == (task_names.ROLLUP_LINE_STATS, "STEELQC_LINE_ROLLUP_INTERVAL_S")
    app.loader.import_default_modules()
    task = app.tasks[job.task]
    assert task.soft_time_limit < task.time_limit
