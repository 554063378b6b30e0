"""The training pages as an ML admin meets them: only backbones that can run are offered (with why
the others are not), and a failed run reads as a short message with its traceback folded away."""

from __future__ import annotations

import pytest

from inspections.models import TrainingRun, TrainingRunStatus

from .conftest import VIEWPORT, log_in

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
