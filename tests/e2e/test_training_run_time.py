"""The training run page tells how long: elapsed time counting on, each phase's time, estimates for
the phase in progress and those to come (from earlier runs), and the parameters as a table."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from inspections.models import DatasetSnapshot, TrainingRun, TrainingRunStatus
from mlcore.training.progress import PHASE_SPANS

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _log(start, *entries: tuple[float, str]) -> str:
    return "".join(f"{start + timedelta(seconds=at):%H:%M:%S} phase {name}\n" for at, name in entries)


def _earlier_run(finished_ago_s: float) -> None:
    """A succeeded run that logged every phase: features 40 s, head 30 s, evaluate 6 s, export 45 s, gate 4 s."""
    started = timezone.now() - timedelta(seconds=finished_ago_s + 130)
    TrainingRun.objects.create(
        status=TrainingRunStatus.SUCCEEDED, progress=1.0, phase="done", started_at=started,
        finished_at=started + timedelta(seconds=130), snapshot=DatasetSnapshot.objects.create(image_count=60),
        log=_log(started, (5, "features"), (45, "head"), (75, "finetune"), (75, "evaluate"), (81, "export"),
                 (126, "gate")))


def test_a_running_run_shows_elapsed_time_phase_times_estimates_and_its_parameters(page, users):
    users("ml_admin", "ml-tia")
    _earlier_run(3600)
    started = timezone.now() - timedelta(seconds=95)
    run = TrainingRun.objects.create(
        status=TrainingRunStatus.RUNNING, progress=sum(PHASE_SPANS["head"]) / 2, phase="head epoch 12", started_at=started,
        snapshot=DatasetSnapshot.objects.create(image_count=60),
        parameters={"backbone": "efficientnet_lite0", "finetune": "off", "detection": "auto", "head_epochs": 40,
                    "serving_int8": False,
                    "left_out_classes": {"scratches": {"reason": "scratches has 3 of 10 training images"}}},
        log=f"{started:%H:%M:%S} training on snapshot 1: 60 images\n" + _log(started, (4, "features"), (60, "head")))
    log_in(page, "ml-tia")
    page.goto(f"/training/{run.pk}/")

    assert re.fullmatch(r"1 min 3\d s", page.inner_text("#run-elapsed")), page.inner_text("#run-elapsed")
    rows = page.locator("#run-phases tbody tr")
    states = rows.evaluate_all("rows => rows.map(r => [r.dataset.phase, r.dataset.state])")
    # Fine-tuning is off for this run: not among the phases to come.
    assert states == [["prepare", "done"], ["features", "done"], ["head", "current"], ["evaluate", "next"],
                      ["export", "next"], ["gate", "next"]]
    head = page.locator('#run-phases tr[data-phase="head"] [data-field="estimate"]').inner_text()
    assert head.startswith("about ") and head.endswith("left (at this phase's pace)"), head
    export = page.locator('#run-phases tr[data-phase="export"] [data-field="estimate"]').inner_text()
    assert export == "about 45 s (from earlier runs)"
    assert page.inner_text("#run-remaining").startswith("about ")
    assert "done around" in page.inner_text("#run-remaining")

    labels = page.locator("#run-parameters tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.parameter, r.cells[0].innerText, r.cells[1].innerText])")
    assert ["head_epochs", "Head epochs", "40"] in labels
    assert ["serving_int8", "Int8 serving copy", "off"] in labels
    assert "left_out_classes" not in [name for name, _, _ in labels]
    assert "scratches has 3 of 10 training images" in page.inner_text("#run-left-out")
    assert "{'" not in page.inner_text("main")

    # The elapsed time counts on between polls.
    first = page.inner_text("#run-elapsed")
    page.wait_for_function("first => document.getElementById('run-elapsed').textContent !== first", arg=first,
                           timeout=5000)
    screenshot(page, "training-run.png", full_page=True)


def test_a_finished_run_shows_how_long_each_phase_took(page, users):
    users("viewer", "viewer-ola")
    started = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)  # log stamps are whole seconds
    run = TrainingRun.objects.create(
        status=TrainingRunStatus.SUCCEEDED, progress=1.0, phase="done", started_at=started,
        finished_at=started + timedelta(seconds=200), parameters={"backbone": "efficientnet_lite0"},
        log=_log(started, (5, "features"), (65, "head"), (125, "export"), (190, "gate")))
    log_in(page, "viewer-ola")
    page.goto(f"/training/{run.pk}/")
    assert page.inner_text("#run-elapsed") == "3 min 20 s"
    times = page.locator("#run-phases tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.phase, r.cells[1].innerText])")
    assert times == [["prepare", "5 s"], ["features", "1 min 00 s"], ["head", "1 min 00 s"],
                     ["export", "1 min 05 s"], ["gate", "10 s"]]
    assert page.locator("#run-remaining").is_hidden()
