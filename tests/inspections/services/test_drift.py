"""Drift figures per day and source against the active version's baseline, and the alerts the
periodic check opens and closes (one per episode, events queued after commit)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from inspections import task_names
from inspections.line.services.drift import drift_alerts_check, drift_baseline, drift_report, total_variation
from inspections.models import DatasetSnapshot, DefectClass, DriftAlert, ModelVersionStatus, Prediction
from tests.factories import InspectionImageFactory, ModelVersionFactory, TrainingRunFactory

pytestmark = pytest.mark.django_db

METRICS = {"split": "test", "review": {"reasons": {"foreign": 0.04}},
           "per_class": {"crazing": {"support": 3}, "inclusion": {"support": 1}}}


@pytest.fixture
def active():
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics=METRICS, promoted_at=timezone.now())
    snapshot = DatasetSnapshot.objects.create(
        image_count=10, checksum="0" * 64,
        counts={"crazing": {"train": 7, "val": 1}, "inclusion": {"train": 5, "val": 3}})
    TrainingRunFactory(snapshot=snapshot, model_version=version)
    return version


def predict(version, *, label="crazing", foreign=False, source="line-1", at=None, reasons=None):
    """One image of ``source`` that arrived ``at`` with ``version``'s prediction."""
    image = InspectionImageFactory(source=source)
    if at is not None:
        type(image).objects.filter(pk=image.pk).update(created_at=at)
    reasons = reasons if reasons is not None else (["foreign", "low_confidence"] if foreign else [])
    Prediction.objects.create(
        image=image, model_version=version, label=DefectClass.objects.get_or_create(name=label)[0], confidence=0.9,
        probabilities={label: 0.9}, needs_review=bool(reasons), ood_score=2.0 if foreign else 0.3,
        review_reasons=reasons)
    return image


def test_baseline_is_the_recorded_foreign_share_and_the_validation_class_mix(active):
    baseline = drift_baseline(version=active)
    assert baseline.foreign_share == 0.04
    assert "test split" in baseline.foreign_share_basis
    assert baseline.class_mix == {"crazing": 0.25, "inclusion": 0.75}
    assert baseline.class_mix_basis == "validation split"


def test_without_a_recorded_share_the_baseline_comes_from_the_calibration_and_the_evaluated_mix():
    version = ModelVersionFactory(metrics={"split": "test", "per_class": {"crazing": {"support": 3},
                                                                         "inclusion": {"support": 1}}})
    baseline = drift_baseline(version=version)
    assert baseline.foreign_share == pytest.approx(0.05)
    assert "calibration" in baseline.foreign_share_basis
    assert baseline.class_mix == {"crazing": 0.75, "inclusion": 0.25}
    assert baseline.class_mix_basis == "test split"


def test_total_variation_is_half_the_absolute_differences():
    assert total_variation({"a": 1.0}, {"b": 1.0}) == 1.0
    assert total_variation({"a": 0.5, "b": 0.5}, {"a": 0.25, "b": 0.75}) == pytest.approx(0.25)
    assert total_variation({}, {"a": 1.0}) is None


def test_figures_per_day_and_source_count_only_the_active_versions_predictions(active):
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    for label, foreign in (("crazing", True), ("crazing", False), ("inclusion", False), ("inclusion", False)):
        predict(active, label=label, foreign=foreign, at=yesterday)
    predict(active, label="inclusion", foreign=True, at=now)
    predict(active, label="crazing", source="line-2", at=now, reasons=["low_confidence"])
    predict(ModelVersionFactory(), foreign=True, at=now)  # another version: not counted
    predict(active, foreign=True, at=now - timedelta(days=20))  # before the period

    report = drift_report(days=14, now=now)
    assert report["model_version"] == active
    rows = {(row["day"], row["source"]): row for row in report["days"]}
    today, before = timezone.localtime(now).date(), timezone.localtime(yesterday).date()
    assert set(rows) == {(before, "line-1"), (today, "line-1"), (today, "line-2")}
    old = rows[(before, "line-1")]
    assert (old["images"], old["foreign"], old["foreign_share"]) == (4, 1, 0.25)
    assert old["class_mix"] == {"crazing": 0.5, "inclusion": 0.5}
    assert old["class_mix_distance"] == pytest.approx(0.25)  # baseline 25/75
    assert rows[(today, "line-2")]["foreign_share"] == 0.0  # low confidence alone is not foreign
    per_source = {row["source"]: row for row in report["sources"]}
    assert (per_source["line-1"]["images"], per_source["line-1"]["foreign"]) == (5, 2)
    assert per_source["line-1"]["class_mix"] == {"crazing": 0.4, "inclusion": 0.6}


def test_one_source_can_be_asked_for(active):
    predict(active, source="line-1")
    predict(active, source="line-2", foreign=True)
    report = drift_report(days=1, source="line-2")
    assert [(row["source"], row["foreign_share"]) for row in report["days"]] == [("line-2", 1.0)]


def test_without_an_active_version_there_are_no_figures():
    ModelVersionFactory()
    report = drift_report(days=7)
    assert (report["model_version"], report["days"], report["sources"]) == (None, [], [])
    assert drift_alerts_check().opened == []


# --- Alerts -----------------------------------------------------------------------------------

@pytest.fixture
def drift_settings(settings):
    settings.STEELQC_DRIFT_FOREIGN_SHARE = 0.2
    settings.STEELQC_DRIFT_WINDOW_HOURS = 24
    settings.STEELQC_DRIFT_MIN_IMAGES = 5
    settings.STEELQC_PROMOTION_WEBHOOK_URL = "http://127.0.0.1:9/events"
    return settings


def images(version, *, foreign: int, clean: int, source="line-1", at=None):
    for _ in range(foreign):
        predict(version, foreign=True, source=source, at=at)
    for _ in range(clean):
        predict(version, source=source, at=at)


def drift_events(sent) -> list[tuple[str, str]]:
    return [(kwargs["event"], DriftAlert.objects.get(pk=kwargs["alert_id"]).source)
            for name, kwargs, _ in sent if name == task_names.SEND_DRIFT_WEBHOOK]


def test_a_source_above_the_threshold_opens_one_alert_and_queues_one_event(active, drift_settings, no_queue,
                                                                           django_capture_on_commit_callbacks):
    images(active, foreign=2, clean=6)  # 25 %
    images(active, foreign=0, clean=8, source="line-2")
    with django_capture_on_commit_callbacks(execute=True):
        changes = drift_alerts_check()
    assert [alert.source for alert in changes.opened] == ["line-1"]
    alert = DriftAlert.objects.get()
    assert (alert.source, alert.foreign_share, alert.image_count, alert.baseline_foreign_share) == (
        "line-1", 0.25, 8, 0.04)
    assert (alert.threshold, alert.window_hours, alert.model_version, alert.closed_at) == (0.2, 24, active, None)
    assert drift_events(no_queue) == [("drift.alert", "line-1")]
    assert no_queue[-1][1]["url"] == "http://127.0.0.1:9/events"

    with django_capture_on_commit_callbacks(execute=True):
        again = drift_alerts_check()
    assert again.opened == [] and again.closed == []
    assert DriftAlert.objects.count() == 1
    assert len(drift_events(no_queue)) == 1  # no duplicate while it stays open


def test_at_or_below_the_threshold_nothing_opens(active, drift_settings, no_queue):
    images(active, foreign=2, clean=8)  # 20 %: not above
    assert drift_alerts_check().opened == []
    assert not DriftAlert.objects.exists()


def test_too_few_images_open_nothing_and_close_nothing(active, drift_settings, no_queue,
                                                       django_capture_on_commit_callbacks):
    images(active, foreign=4, clean=0)  # 100 % of 4 < 5 images
    assert drift_alerts_check().opened == []
    images(active, foreign=1, clean=0)
    assert len(drift_alerts_check().opened) == 1
    drift_settings.STEELQC_DRIFT_MIN_IMAGES = 50  # too few to tell now: the alert stays open
    assert drift_alerts_check().closed == []
    assert DriftAlert.objects.get().closed_at is None


def test_images_older_than_the_window_do_not_count(active, drift_settings, no_queue):
    images(active, foreign=6, clean=0, at=timezone.now() - timedelta(hours=25))
    images(active, foreign=0, clean=6)
    assert drift_alerts_check().opened == []
    drift_settings.STEELQC_DRIFT_WINDOW_HOURS = 48
    assert [alert.foreign_share for alert in drift_alerts_check().opened] == [0.5]


def test_the_alert_closes_when_the_share_falls_back_and_a_new_episode_opens_a_new_one(
        active, drift_settings, no_queue, django_capture_on_commit_callbacks):
    start = timezone.now()
    images(active, foreign=3, clean=3, at=start - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        first = drift_alerts_check(now=start).opened[0]
    images(active, foreign=0, clean=30, at=start + timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        closed = drift_alerts_check(now=start + timedelta(hours=3)).closed
    assert [alert.pk for alert in closed] == [first.pk]
    first.refresh_from_db()
    assert (first.closed_at, first.closed_foreign_share, first.closed_image_count) == (
        start + timedelta(hours=3), 3 / 36, 36)
    assert first.foreign_share == 0.5  # what it opened with stays as it was
    images(active, foreign=20, clean=0, at=start + timedelta(hours=4))
    with django_capture_on_commit_callbacks(execute=True):
        second = drift_alerts_check(now=start + timedelta(hours=5)).opened
    assert len(second) == 1 and second[0].pk != first.pk
    assert drift_events(no_queue) == [("drift.alert", "line-1"), ("drift.resolved", "line-1"),
                                      ("drift.alert", "line-1")]


def test_nothing_is_queued_when_no_webhook_is_configured(active, drift_settings, no_queue,
                                                         django_capture_on_commit_callbacks):
    drift_settings.STEELQC_PROMOTION_WEBHOOK_URL = ""
    images(active, foreign=5, clean=0)
    with django_capture_on_commit_callbacks(execute=True):
        assert len(drift_alerts_check().opened) == 1
    assert no_queue == []


def test_the_database_refuses_a_second_open_alert_for_a_source(active):
    fields = {"source": "line-1", "opened_at": timezone.now(), "window_hours": 24, "threshold": 0.2,
              "foreign_share": 0.5, "image_count": 10}
    DriftAlert.objects.create(**fields)
    DriftAlert.objects.create(**fields, closed_at=timezone.now())  # closed ones may pile up
    with pytest.raises(IntegrityError), transaction.atomic():
        DriftAlert.objects.create(**fields)


def test_the_report_costs_the_same_few_queries_however_many_images_and_sources(active):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    predict(active, source="line-1")
    with CaptureQueriesContext(connection) as few:
        drift_report(days=14)
    for n in range(12):
        predict(active, source=f"line-{n % 4}", label=("crazing", "inclusion")[n % 2], foreign=n % 3 == 0)
    with CaptureQueriesContext(connection) as many:
        report = drift_report(days=14)
    assert len(report["sources"]) == 4
    assert len(many) == len(few) <= 4
    grouped = [query["sql"] for query in many if "GROUP BY" in query["sql"]]
    assert len(grouped) == 2  # one aggregate query over the predictions, one over the line counts
