"""Bulk upload of a zip with one corrupt member and a loose image: per-file results in the page."""

from __future__ import annotations

import io
import zipfile

import pytest

from inspections.catalog.services.image_validation import NOT_AN_IMAGE
from inspections.models import InspectionImage
from tests.factories import InspectionImageFactory, PredictionFactory, image_bytes

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_zip_with_a_corrupt_file_shows_per_file_results(page, users):
    users("qa", "qa-dora")
    known = InspectionImageFactory(_content=image_bytes(seed=14), original_name="known.png")
    PredictionFactory(image=known, probabilities={"crazing": 0.9, "inclusion": 0.1})
    archive = _zip({
        "coil-17/top/scratch-01.png": image_bytes(seed=11),
        "coil-17/top/scratch-02.bmp": image_bytes(seed=12, fmt="BMP"),
        "coil-17/top/known-again.png": image_bytes(seed=14),
        "coil-17/bottom/corrupt.png": b"\x89PNG\r\n\x1a\nthis is not image data",
        "coil-17/readme.txt": b"shift B",
    })
    log_in(page, "qa-dora")
    page.click('[data-nav="bulk-upload"]')
    page.set_input_files("#bulk-files", files=[
        {"name": "coil-17.zip", "mimeType": "application/zip", "buffer": archive},
        {"name": "loose.png", "mimeType": "image/png", "buffer": image_bytes(seed=13)},
    ])
    page.fill("#bulk-source", "line-3")
    page.focus("#bulk-button")
    page.keyboard.press("Enter")
    page.locator("#bulk-message").filter(has_text="Done").wait_for()

    rows = {row.locator(".upload-name").inner_text(): row for row in page.locator("#bulk-results li.upload-item").all()}
    status = {name: row.get_attribute("data-state") for name, row in rows.items()}
    assert status == {"scratch-01.png": "stored", "scratch-02.bmp": "stored", "known-again.png": "duplicate",
                      "corrupt.png": "refused", "readme.txt": "refused", "loose.png": "stored"}
    assert rows["corrupt.png"].locator(".upload-state").inner_text() == f"Refused: {NOT_AN_IMAGE}"
    assert rows["scratch-01.png"].locator(".upload-from").inner_text() == "in coil-17.zip"
    assert rows["loose.png"].locator(".upload-from").count() == 0
    # A known file: the image it already was, with the model's answer, as on the upload page.
    known_row = rows["known-again.png"]
    assert known_row.locator(".upload-state").inner_text() == f"Already there (image {known.pk})"
    known_row.locator(".prediction-label").wait_for()
    assert known_row.locator(".upload-answer").inner_text().startswith("crazing 90.0%")
    assert known_row.locator(".upload-review").get_attribute("href") == f"/review/{known.pk}/"
    stored = InspectionImage.objects.get(original_name="scratch-01.png")
    stored_row = rows["scratch-01.png"]
    assert stored_row.locator(".upload-state").inner_text() == f"Stored as image {stored.pk}"
    assert "classified when the first model is ready" in stored_row.locator(".upload-answer").inner_text()
    assert stored_row.locator("img.upload-thumb").evaluate("img => img.decode().then(() => img.naturalWidth)") == stored.width
    assert page.locator("#bulk-message").inner_text() == "Done: 2 files sent, 6 results below."
    assert page.locator("#bulk-progress").get_attribute("value") == "100"
    assert "3 stored · 1 already there · 2 refused" in page.locator("#bulk-summary").inner_text()
    screenshot(page, "bulk-upload.png")

    uploaded = InspectionImage.objects.exclude(pk=known.pk)
    assert {i.original_name for i in uploaded} == {"scratch-01.png", "scratch-02.bmp", "loose.png"}
    assert {i.source for i in uploaded} == {"line-3"}
