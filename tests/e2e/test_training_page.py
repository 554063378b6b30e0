"""The training pages as an ML admin meets them: only backbones that can run are offered (with why
the others are not), and a failed run reads as a short message with its traceback folded away."""

from __future__ import annotations

import pytest

from inspections.models import TrainingRun, TrainingRunStatus

from .conftest import VIEWPORT, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_backbone_without_weights_is_not_offered_and_the_page_says_why(page, users, settings, tmp_path):
    settings.STEELQC_RESNET50_WEIGHTS = str(tmp_path / "absent.h5")
    users("ml_admin", "ml-ivo")
    log_in(page, "ml-ivo")
    page.goto("/training/")
    offered = page.eval_on_selector_all('select[name="backbone"] option', "options => options.map(o => o.value)")
    assert offered == ["auto", "efficientnet_lite0"]
    why = page.locator('#unavailable-backbones li[data-backbone="resnet50"]').inner_text()
    assert str(tmp_path / "absent.h5") in why and "STEELQC_RESNET50_WEIGHTS" in why
    screenshot(page, "training.png")


def test_a_failed_run_shows_a_short_message_with_the_traceback_folded(page, users):
    users("ml_admin", "ml-jon")
    frames = "".join(f'  File "/very/long/path/{"x" * 120}/module_{i}.py", line {i}, in step_{i}\n' for i in range(40))
    run = TrainingRun.objects.create(
        status=TrainingRunStatus.FAILED,
        error=f"PretrainedWeightsUnavailable: ResNet50 ImageNet weights not found\n\nTraceback:\n{frames}",
    )
    log_in(page, "ml-jon")
    page.goto(f"/training/{run.pk}/")
    assert page.locator("#run-error p.error").inner_text() == (
        "PretrainedWeightsUnavailable: ResNet50 ImageNet weights not found")
    assert not page.locator("#run-error pre").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    assert page.locator("#run-phase").inner_text() == "–"
    page.click("#run-error summary")
    assert page.locator("#run-error pre").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]


def test_the_training_list_follows_a_run_without_a_reload(page, users):
    users("viewer", "viewer-kai")
    run = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, phase="features", progress=0.1)
    log_in(page, "viewer-kai")
    page.goto("/training/")
    row = page.locator(f'tr[data-run="{run.pk}"]')
    assert row.locator('[data-field="percent"]').inner_text() == "10%"
    TrainingRun.objects.filter(pk=run.pk).update(phase="head epoch 3", progress=0.45)
    row.locator('[data-field="percent"]').filter(has_text="45%").wait_for(timeout=10_000)
    assert row.locator('[data-field="phase"]').inner_text() == "head epoch 3"
    assert float(row.locator("progress").evaluate("bar => bar.value")) == 0.45


def test_cancel_asks_first_and_a_no_keeps_the_run(page, users):
    users("ml_admin", "ml-lea")
    run = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, phase="head", progress=0.5)
    log_in(page, "ml-lea")
    page.goto(f"/training/{run.pk}/")
    asked: list[str] = []

    def answer(dialog, accept: bool):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("#cancel-form button")
    page.wait_for_timeout(500)
    run.refresh_from_db()
    assert asked and f"Cancel training run {run.pk}?" in asked[0]
    assert not run.cancel_requested

    page.once("dialog", lambda dialog: answer(dialog, True))
    with page.expect_navigation():
        page.click("#cancel-form button")
    run.refresh_from_db()
    assert len(asked) == 2 and run.cancel_requested


def test_every_training_parameter_is_on_the_page_the_rarer_ones_folded(page, users):
    from mlcore.training.parameters import PARAMETERS

    users("ml_admin", "ml-max")
    log_in(page, "ml-max")
    page.goto("/training/")
    form = page.locator("form.start-training")
    named = form.locator("[name]").evaluate_all("fields => fields.map(f => f.name)")
    named.remove("csrfmiddlewaretoken")
    assert sorted(named) == sorted(p.name for p in PARAMETERS) and named[:3] == ["backbone", "finetune", "head_epochs"]
    assert not form.locator('input[name="batch_size"]').is_visible()
    page.click("#more-parameters summary")
    assert form.locator('input[name="batch_size"]').get_attribute("max") == "256"
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    screenshot(page, "training-parameters.png", full_page=True)
