"""Bulk upload of a zip with one corrupt member and a loose image: per-file results in the page."""

from __future__ import annotations

import io
import zipfile

import pytest

from inspections.catalog.services.image_validation import NOT_AN_IMAGE
from inspections.models import InspectionImage
from tests.factories import image_bytes

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
    archive = _zip({
        "coil-17/top/scratch-01.png": image_bytes(seed=11),
        "coil-17/top/scratch-02.bmp": image_bytes(seed=12, fmt="BMP"),
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

    rows = {row.locator("td").nth(0).inner_text(): row for row in page.locator("#bulk-results tbody tr").all()}
    status = {name: row.get_attribute("data-status") for name, row in rows.items()}
    assert status == {"scratch-01.png": "created", "scratch-02.bmp": "created", "corrupt.png": "refused",
                      "readme.txt": "refused", "loose.png": "created"}
    assert rows["corrupt.png"].locator("td").nth(3).inner_text().strip() == NOT_AN_IMAGE
    assert page.locator("#bulk-message").inner_text() == "Done: 2 files sent, 5 results below."
    assert page.locator("#bulk-progress").get_attribute("value") == "100"
    assert "3 stored" in page.locator("#bulk-summary").inner_text()
    assert "2 refused" in page.locator("#bulk-summary").inner_text()
    screenshot(page, "bulk-upload.png")

    stored = InspectionImage.objects.all()
    assert {i.original_name for i in stored} == {"scratch-01.png", "scratch-02.bmp", "loose.png"}
    assert {i.source for i in stored} == {"line-3"}
