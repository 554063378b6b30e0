"""An ML admin starts a training run from the page and watches it move: the real worker trains,
the page's progress bar climbs through the phases to 100% without a reload by hand."""

from __future__ import annotations

import time

import pytest

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import ImageStatus, InspectionImage, TrainingRun, TrainingRunStatus
from tests.conftest import tiny_dataset, wait_for

from .conftest import log_in

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _shown(page) -> tuple[float, str] | None:
    """The bar's value and the status beside it, read together (the page sets both at once; two
    reads could straddle the update, or the reload that follows a run's end)."""
    try:
        value, status = page.evaluate("() => [document.getElementById('run-progress').value,"
                                      " document.getElementById('run-status').innerText]")
        return float(value), status
    except Exception:  # the page reloads itself when the run ends
        return None


def test_the_progress_bar_moves_while_the_worker_trains(page, users, celery_worker, tmp_path, settings):
    # The installation's training defaults (what the form does not set): a small, quick run.
    settings.STEELQC_TRAINING_DEFAULTS = {"input_size": 64, "augmented_views": 1, "serving_int8": False}
    # Ten images a class (7 train, 1 test each): ready by a lower rule, the page's progress is the point.
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 5, 1
    users("ml_admin", "ml-ada")
    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    log_in(page, "ml-ada")
    page.goto("/training/")
    page.select_option('select[name="backbone"]', "efficientnet_lite0")
    page.select_option('select[name="finetune"]', "off")
    page.fill('input[name="head_epochs"]', "40")
    page.click("form.start-training button[type=submit]")
    page.wait_for_url("**/training/*/")
    run = TrainingRun.objects.get()
    assert page.url.endswith(f"/training/{run.pk}/")

    seen: list[float] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        shown = _shown(page)
        if shown:
            seen.append(shown[0])
            if shown[1] in ("succeeded", "failed", "cancelled"):
                break
        time.sleep(0.2)
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.SUCCEEDED, run.error
    assert (run.parameters["input_size"], run.parameters["head_epochs"]) == (64, 40)
    assert seen == sorted(seen), f"the bar went backwards: {seen}"
    assert any(0 < value < 1 for value in seen), f"the bar never showed a run in progress: {sorted(set(seen))}"
    assert len({value for value in seen if 0 < value < 1}) >= 2, sorted(set(seen))
    assert seen[-1] == 1.0
    assert page.inner_text("#run-percent") == "100%"
    # The promoted first version predicts the imported images; let the worker finish before the
    # end-of-test flush truncates the tables it writes to.
    wait_for(lambda: not InspectionImage.objects.filter(status=ImageStatus.PENDING).exists(), timeout=120)
