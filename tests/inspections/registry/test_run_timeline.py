"""A training run's time, phase by phase, and the estimates of what is left: from its own log and
progress, and from earlier runs' phase times (inspections/registry/run_timeline.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from inspections.registry.run_timeline import EarlierRun, run_phases, run_timing, typical_seconds
from mlcore.training.progress import PHASE_SPANS

START = datetime(2026, 3, 2, 23, 59, 50, tzinfo=UTC)


def _log(*entries: tuple[float, str]) -> str:
    """Log lines as the reporter writes them: 'HH:MM:SS phase NAME', seconds after START."""
    return "".join(f"{START + timedelta(seconds=at):%H:%M:%S} phase {name}\n" for at, name in entries)


def _earlier(durations: dict[str, float], *, images: int) -> EarlierRun:
    """A finished run with these phase times (prepare first), as run_phases reads its log."""
    at, entries = durations.get("prepare", 0.0), []
    for name, seconds in durations.items():
        if name != "prepare":
            entries.append((at, name))
            at += seconds
    phases = run_phases(log=_log(*entries), started_at=START, finished_at=START + timedelta(seconds=at))
    return EarlierRun(phases=phases, image_count=images)


def test_phases_are_read_from_the_log_across_midnight_with_the_start_as_prepare():
    log = "23:59:50 training on snapshot 3: 40 images\n" + _log((5, "features"), (25, "head"), (25, "head"))
    phases = run_phases(log=log, started_at=START, finished_at=None)
    assert [p.name for p in phases] == ["prepare", "features", "head"]
    assert phases[1].started_at == datetime(2026, 3, 2, 23, 59, 55, tzinfo=UTC)
    assert phases[2].started_at == datetime(2026, 3, 3, 0, 0, 15, tzinfo=UTC)  # the next day
    assert phases[0].seconds(START) == 5.0 and phases[2].ended_at is None


def test_the_current_phase_is_estimated_at_its_own_pace():
    # Half-way through the features' span of the bar after 20 s: about 20 s are left.
    low, high = PHASE_SPANS["features"]
    now = START + timedelta(seconds=25)
    timing = run_timing(status="running", progress=(low + high) / 2, created_at=START, started_at=START, finished_at=None,
                        log=_log((5, "features")), now=now)
    current = next(p for p in timing["phases"] if p["state"] == "current")
    assert (current["name"], current["state"], current["seconds"]) == ("features", "current", 20.0)
    assert current["estimate_s"] == pytest.approx(20.0) and current["basis"] == "at this phase's pace"
    assert timing["elapsed_s"] == 25.0
    # Without an earlier run the phases to come have no estimate: the time left is a lower bound.
    assert timing["remaining_is_lower_bound"] is True and timing["finish_at"] is None
    assert [p["name"] for p in timing["phases"] if p["state"] == "next"] == ["head", "evaluate", "export", "gate"]


def test_phases_to_come_take_earlier_runs_median_scaled_by_images_except_the_export():
    earlier = [_earlier({"prepare": 2, "features": 20, "head": 10, "finetune": 0, "evaluate": 4, "export": 30,
                         "gate": 2}, images=100),
               _earlier({"prepare": 2, "features": 40, "head": 30, "finetune": 0, "evaluate": 8, "export": 50,
                         "gate": 4}, images=100),
               _earlier({"prepare": 2, "features": 99, "head": 99, "evaluate": 99}, images=100)]  # an old log
    typical = typical_seconds(earlier, image_count=200)
    assert typical["features"] == pytest.approx(60.0)   # median of 40 and 80 (twice the images)
    assert typical["export"] == pytest.approx(40.0)     # not scaled: a model conversion
    assert typical["finetune"] == 0.0

    now = START + timedelta(seconds=60)
    timing = run_timing(status="running", progress=0.96, created_at=START, started_at=START, finished_at=None,
                        log=_log((2, "features"), (30, "head"), (45, "finetune"), (45, "evaluate"), (50, "export")),
                        earlier=earlier, image_count=200, now=now)
    rows = {p["name"]: p for p in timing["phases"]}
    # The export reports no progress at its start: earlier runs' 40 s, 10 s of them spent.
    assert (rows["export"]["estimate_s"], rows["export"]["basis"]) == (pytest.approx(30.0), "from earlier runs")
    assert (rows["gate"]["state"], rows["gate"]["estimate_s"]) == ("next", pytest.approx(6.0))
    assert timing["remaining_s"] == pytest.approx(36.0) and timing["remaining_is_lower_bound"] is False
    assert datetime.fromisoformat(timing["finish_at"]) == now + timedelta(seconds=36)
    assert timing["history_runs"] == 2


def test_an_early_stopped_head_takes_the_shorter_of_its_pace_and_earlier_runs():
    earlier = [_earlier({"features": 10, "head": 30, "evaluate": 2, "export": 5, "gate": 1}, images=50)]
    low, high = PHASE_SPANS["head"]
    timing = run_timing(status="running", progress=low + (high - low) * 0.1, created_at=START, started_at=START,
                        finished_at=None, log=_log((0, "features"), (10, "head")), earlier=earlier, image_count=50,
                        now=START + timedelta(seconds=20))
    head = next(p for p in timing["phases"] if p["state"] == "current")
    # At its pace (10 % of the most epochs in 10 s) 90 s would be left; earlier heads stopped after 30 s.
    assert (head["estimate_s"], head["basis"]) == (pytest.approx(20.0), "from earlier runs")


def test_a_phase_running_longer_than_earlier_runs_says_so_and_the_rest_is_a_lower_bound():
    earlier = [_earlier({"features": 10, "head": 30, "evaluate": 2, "export": 5, "gate": 1}, images=50)]
    timing = run_timing(status="running", progress=0.99, created_at=START, started_at=START, finished_at=None,
                        log=_log((0, "features"), (10, "head"), (40, "evaluate"), (42, "export"), (60, "gate")),
                        earlier=earlier, image_count=50, now=START + timedelta(seconds=90))
    gate = next(p for p in timing["phases"] if p["state"] == "current")
    assert (gate["name"], gate["estimate_s"], gate["basis"]) == ("gate", None, "longer than earlier runs' 1 s")
    assert timing["remaining_is_lower_bound"] is True


def test_a_finished_run_shows_each_phase_and_its_total_without_estimates():
    timing = run_timing(status="succeeded", progress=1.0, created_at=START, started_at=START,
                        finished_at=START + timedelta(seconds=70), log=_log((2, "features"), (40, "export")),
                        now=START + timedelta(hours=3))
    assert [(p["name"], p["seconds"], p["state"]) for p in timing["phases"]] == [
        ("prepare", 2.0, "done"), ("features", 38.0, "done"), ("export", 30.0, "done")]
    assert timing["elapsed_s"] == 70.0 and timing["remaining_s"] is None


def test_a_queued_run_counts_its_wait():
    timing = run_timing(status="queued", progress=0.0, created_at=START, started_at=None, finished_at=None, log="",
                        now=START + timedelta(seconds=12))
    assert (timing["waiting_s"], timing["elapsed_s"], timing["phases"]) == (12.0, None, [])


@pytest.mark.django_db
def test_the_api_gives_a_running_runs_timing_from_its_log_and_earlier_runs():
    from django.utils import timezone

    from inspections.registry.models import TrainingRun
    from tests.inspections.api.conftest import client_for

    now = timezone.now().replace(microsecond=0)
    done = now - timedelta(hours=1)
    TrainingRun.objects.create(status="succeeded", progress=1.0, started_at=done, finished_at=done + timedelta(seconds=60),
                               log=_log_from(done, (2, "features"), (20, "head"), (30, "evaluate"), (35, "export"),
                                             (55, "gate")))
    started = now - timedelta(seconds=40)
    run = TrainingRun.objects.create(status="running", progress=0.93, phase="evaluate", started_at=started,
                                     log=_log_from(started, (2, "features"), (20, "head"), (38, "evaluate")))
    timing = client_for("viewer").get(f"/api/v1/training-runs/{run.pk}/").json()["timing"]
    assert [(p["name"], p["state"]) for p in timing["phases"]] == [
        ("prepare", "done"), ("features", "done"), ("head", "done"), ("evaluate", "current"), ("export", "next"),
        ("gate", "next")]
    assert [p["estimate_s"] for p in timing["phases"][-2:]] == [20.0, 5.0]
    assert timing["history_runs"] == 1 and timing["elapsed_s"] == pytest.approx(40, abs=10)  # a busy machine


def _log_from(start, *entries: tuple[float, str]) -> str:
    return "".join(f"{start + timedelta(seconds=at):%H:%M:%S} phase {name}\n" for at, name in entries)


def test_an_anomaly_run_has_its_own_phases_and_draws_on_earlier_anomaly_runs():
    earlier = _earlier({"prepare": 2, "scan": 1, "features": 20, "coreset": 2, "calibrate": 5, "save": 1, "gate": 4},
                       images=100)
    log = _log((2, "scan"), (3, "features"))
    timing = run_timing(status="running", progress=0.05 + 0.75 * 0.5, created_at=START, started_at=START,
                        finished_at=None, log=log, earlier=[earlier], image_count=100,
                        now=START + timedelta(seconds=13), kind="anomaly")
    rows = {row["name"]: row for row in timing["phases"]}
    assert list(rows) == ["prepare", "scan", "features", "coreset", "calibrate", "save", "gate"]
    assert rows["features"]["state"] == "current" and rows["features"]["estimate_s"] == pytest.approx(10.0)
    assert rows["coreset"]["label"] == "Choosing the patches to remember" and rows["coreset"]["estimate_s"] == 2.0
    assert timing["history_runs"] == 1
