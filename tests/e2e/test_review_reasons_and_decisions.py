"""In a browser, with the real worker predicting: a foreign photo shows its reason in the queue
and in words in the review view; key 0 labels it no_defect; X excludes an image with a reason
and, on the excluded image, includes it again."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inspections.models import NO_DEFECT_CLASS, DefectClass, InspectionImage, Review
from tests.conftest import wait_for
from tests.data import tiny_model_surface

from .conftest import log_in, screenshot, uploaded_and_predicted

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _queue_order(page) -> list[int]:
    return [int(row.get_attribute("data-image-id")) for row in page.locator("#queue-table tbody tr[data-image-id]").all()]


def test_a_foreign_photo_says_why_gets_no_defect_with_0_and_an_image_is_excluded_and_included(
        page, users, celery_worker, tiny_model_dirs):
    from skimage import data

    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    users("qa", "qa-ines")
    # The migration makes no_defect; a transactional test earlier in a full run may have flushed
    # the migrated rows (as with the role groups), so the class is made sure of here.
    DefectClass.objects.update_or_create(name=NO_DEFECT_CLASS, defaults={"active": True})
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    photo, photo_prediction = uploaded_and_predicted(data.astronaut(), "astronaut.png")
    coil, coil_prediction = uploaded_and_predicted(tiny_model_surface("crazing", np.random.default_rng(3)), "coil.png")
    assert "foreign" in photo_prediction.review_reasons, photo_prediction.review_reasons
    assert "foreign" not in coil_prediction.review_reasons, coil_prediction.review_reasons

    log_in(page, "qa-ines")
    page.goto("/review/?review_reason=foreign")
    assert _queue_order(page) == [photo.pk]
    badge = page.locator(f'#queue-table tr[data-image-id="{photo.pk}"] [data-reason="foreign"]')
    assert badge.inner_text() == "foreign"
    screenshot(page, "review-queue-foreign.png")

    page.locator(f'#queue-table tr[data-image-id="{photo.pk}"] a').click()
    page.wait_for_url(re.compile(rf"/review/{photo.pk}/\?"))
    reason = page.locator('#review-reasons [data-reason="foreign"]')
    assert "Unlike anything the model was trained on." in reason.inner_text()
    assert page.locator('.label-button[data-key="0"]').get_attribute("data-label") == "no_defect"
    page.keyboard.press("0")
    wait_for(lambda: InspectionImage.objects.filter(pk=photo.pk, label__name="no_defect").exists(), timeout=20)
    page.wait_for_url(lambda url: f"/review/{photo.pk}/" not in url)
    assert Review.objects.get(image=photo).decision == "label"

    page.goto(f"/review/{coil.pk}/")
    assert page.locator("#excluded-note").is_hidden()
    page.keyboard.press("x")
    assert page.evaluate("document.activeElement.id") == "exclude-reason"
    page.keyboard.type("camera fault")
    page.keyboard.press("Enter")
    wait_for(lambda: InspectionImage.objects.filter(pk=coil.pk, excluded=True).exists(), timeout=20)
    page.wait_for_url(lambda url: f"/review/{coil.pk}/" not in url)
    page.goto("/review/")
    assert coil.pk not in _queue_order(page)

    page.goto(f"/review/{coil.pk}/")
    assert "camera fault" in page.locator("#excluded-note").inner_text()
    assert "excluded: camera fault" in page.locator("#history").inner_text()
    assert page.locator("#exclude-form").is_hidden()
    page.keyboard.press("x")
    wait_for(lambda: InspectionImage.objects.filter(pk=coil.pk, excluded=False).exists(), timeout=20)
    assert list(Review.objects.filter(image=coil).order_by("id").values_list("decision", "reason")) == [
        ("exclude", "camera fault"), ("include", "")]
    page.wait_for_url(lambda url: f"/review/{coil.pk}/" not in url)  # the page moves on by itself; then leave
    page.goto("/review/")
    assert coil.pk in _queue_order(page)
