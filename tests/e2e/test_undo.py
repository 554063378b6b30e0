"""In a browser: a QA person labels an image with a key, the next image's note offers to undo it,
U takes it back and returns to the image as it was; the history's Undo takes back the latest
decision of an image revisited later."""

from __future__ import annotations

import re

import pytest

from inspections.models import DefectClass, InspectionImage, Review

from .conftest import log_in, screenshot
from .test_review_workspace import _classes, _predicted

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_u_takes_back_the_decision_just_saved_and_the_history_undoes_a_later_one(page, users, tiny_model_dirs):
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    users("qa", "qa-ulla")
    _classes("crazing", "inclusion")
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    first = _predicted(version, {"crazing": 0.55, "inclusion": 0.45}, needs_review=True, texture="stripes")
    second = _predicted(version, {"inclusion": 0.6, "crazing": 0.4}, needs_review=True, texture="spots")

    log_in(page, "qa-ulla")
    page.goto(f"/review/{first.pk}/")
    page.keyboard.press(page.locator('.label-button[data-label="inclusion"]').get_attribute("data-key"))
    page.wait_for_url(re.compile(rf"/review/{second.pk}/"))
    note = page.locator("#saved-note")
    assert note.inner_text().startswith(f"Saved: image {first.pk} labelled inclusion.")
    undo = page.locator("#saved-undo")
    undo.wait_for()
    screenshot(page, "review-undo-note.png")
    assert InspectionImage.objects.get(pk=first.pk).label.name == "inclusion"

    page.keyboard.press("u")
    page.wait_for_url(re.compile(rf"/review/{first.pk}/"))
    assert page.locator("#saved-note").inner_text() == f"Undone: image {first.pk} is back to unlabelled."
    first.refresh_from_db()
    assert (first.label, first.label_version) == (None, 2)
    assert [r.decision for r in Review.objects.filter(image=first).order_by("id")] == ["label", "undo"]
    assert "undone" in page.locator("#history tbody tr").first.inner_text()

    # Later: the second image labelled, revisited, and its latest decision undone from its history.
    key = page.locator('.label-button[data-label="crazing"]').get_attribute("data-key")
    page.goto(f"/review/{second.pk}/?reviewed=all")
    page.keyboard.press(key)
    page.wait_for_function("() => (document.getElementById('saved-note').textContent || '').includes('Saved')")
    page.goto(f"/review/{second.pk}/?reviewed=all")
    assert page.locator("#history-undo button").is_visible()
    page.locator("#history-undo button").click()
    page.wait_for_url(re.compile(rf"/review/{second.pk}/\?reviewed=all$"))
    assert page.locator("#saved-note").inner_text().strip() == f"Undone: image {second.pk} is back to unlabelled."
    assert page.locator("#history-undo").count() == 0
    second.refresh_from_db()
    assert second.label is None and DefectClass.objects.filter(name="crazing").exists()
