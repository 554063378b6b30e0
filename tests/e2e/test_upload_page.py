"""The upload page in a browser: a QA user chooses a file, the real worker classifies it with the
active model, and the page draws the answer's probability bars."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inspections.catalog.services.image_validation import NOT_AN_IMAGE
from inspections.models import ImageStatus, InspectionImage
from tests.data import tiny_model_surface

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _stripes_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(tiny_model_surface("crazing", np.random.default_rng(5))).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_chosen_file_is_classified_and_its_probability_bars_are_drawn(page, users, celery_worker, tiny_model_dirs):
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    users("qa", "qa-uma")
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    log_in(page, "qa-uma")
    page.click('[data-nav="upload"]')
    page.set_input_files("#upload-files", files=[{"name": "coil-9.png", "mimeType": "image/png",
                                                  "buffer": _stripes_png()}])
    page.click("#upload-button")

    item = page.locator("#upload-results li.upload-item").first
    item.locator("table.probabilities").wait_for(timeout=60_000)
    assert item.get_attribute("data-answer") == "predicted"
    assert item.locator(".upload-name").inner_text() == "coil-9.png"
    rows = item.locator("table.probabilities tbody tr").all()
    names = [row.locator(".prob-name").inner_text() for row in rows]
    assert sorted(names) == ["crazing", "inclusion"]
    widths = [float(row.locator(".prob-bar").evaluate("bar => bar.getBoundingClientRect().width")) for row in rows]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1], widths
    image = InspectionImage.objects.get(original_name="coil-9.png")
    prediction = image.predictions.get(model_version=version)
    assert item.locator(".upload-state").inner_text() == f"Stored as image {image.pk}"
    assert item.locator(".prediction-label").inner_text() == prediction.label.name
    assert f"{100 * prediction.confidence:.1f}%" in item.locator(".upload-answer").inner_text()
    assert item.locator(".upload-review").get_attribute("href") == f"/review/{image.pk}/"
    assert item.locator("img.upload-thumb").evaluate("img => img.decode().then(() => img.naturalWidth)") == image.width
    assert image.status == ImageStatus.PREDICTED

    # The same file again: the row names the image the platform already had, with its answer.
    page.set_input_files("#upload-files", files=[{"name": "coil-9-again.png", "mimeType": "image/png",
                                                  "buffer": _stripes_png()}])
    page.click("#upload-button")
    again = page.locator("#upload-results li.upload-item").nth(1)
    again.locator(".upload-state").filter(has_text="Already there").wait_for()
    assert again.locator(".upload-state").inner_text() == f"Already there (image {image.pk})"
    assert again.get_attribute("data-state") == "duplicate"
    assert again.locator(".prediction-label").inner_text() == prediction.label.name
    assert again.locator(".upload-review").get_attribute("href") == f"/review/{image.pk}/"
    assert InspectionImage.objects.count() == 1
    screenshot(page, "upload.png")


def test_a_text_file_named_png_is_refused_in_words_about_the_file(page, users):
    users("qa", "qa-vera")
    log_in(page, "qa-vera")
    page.goto("/upload/")
    page.set_input_files("#upload-files", files=[{"name": "notes.png", "mimeType": "image/png",
                                                  "buffer": b"shift B: coil 17 looked fine\n"}])
    page.click("#upload-button")
    item = page.locator("#upload-results li.upload-item").first
    item.locator(".upload-state").filter(has_text="Refused").wait_for()
    assert item.locator(".upload-state").inner_text() == f"Refused: {NOT_AN_IMAGE}"
    assert not InspectionImage.objects.exists()
