"""The first minutes after `make run`: no model is active yet. Every page says so, names the run that
will bring one with its phase and progress (kept current without a reload), and an upload says at
once that the image is stored instead of hanging at "Classifying…"."""

from __future__ import annotations

import pytest

from inspections.models import InspectionImage, TrainingRun, TrainingRunStatus
from tests.factories import image_bytes

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PAGES = {"home": "/", "upload": "/upload/", "queue": "/review/", "dashboard": "/dashboard/"}


def test_every_page_names_the_training_run_that_brings_the_first_model(page, users):
    users("qa", "qa-nell")
    run = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, phase="training the head", progress=0.35)
    log_in(page, "qa-nell")
    for name, url in PAGES.items():
        page.goto(url)
        banner = page.locator("#model-state")
        text = " ".join(banner.inner_text().split())
        assert text.startswith(f"No active model yet — training run {run.pk}: training the head, 35%"), (name, text)
        assert banner.locator("a").first.get_attribute("href") == f"/training/{run.pk}/", name
        if name == "home":
            screenshot(page, "no-model-yet.png")

    TrainingRun.objects.filter(pk=run.pk).update(phase="fine-tuning", progress=0.8)
    page.locator("#model-state-percent").filter(has_text="80%").wait_for(timeout=10_000)
    assert page.locator("#model-state-phase").inner_text() == "fine-tuning"


def test_pages_say_how_to_get_a_model_when_no_run_has_started(page, users):
    users("viewer", "viewer-otto")
    log_in(page, "viewer-otto")
    page.goto("/dashboard/")
    text = " ".join(page.locator("#model-state").inner_text().split())
    assert text.startswith("No active model yet — no training run has started."), text


def test_upload_before_a_model_exists_says_at_once_the_image_is_stored(page, users):
    users("qa", "qa-pia")
    TrainingRun.objects.create(status=TrainingRunStatus.QUEUED)
    log_in(page, "qa-pia")
    page.goto("/upload/")
    page.set_input_files("#upload-files", files=[{"name": "early.png", "mimeType": "image/png",
                                                  "buffer": image_bytes(seed=3)}])
    page.click("#upload-button")
    item = page.locator("#upload-results li.upload-item").first
    item.locator(".upload-state").filter(has_text="Stored").wait_for(timeout=5_000)
    assert "classified when the first model is ready" in item.inner_text()
    assert item.get_attribute("data-state") == "stored"
    page.locator("#upload-message").filter(has_text="Sent: 1 file.").wait_for(timeout=2_000)
    assert not page.locator("#upload-button").is_disabled()
    assert InspectionImage.objects.filter(original_name="early.png").exists()
