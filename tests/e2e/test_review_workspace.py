"""QA labels with the keyboard, sees the heatmap and the audit trail; a viewer cannot label."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from inspections.models import DefectClass, ImageStatus, InspectionImage, Prediction, Review
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.data import tiny_model_surface
from tests.factories import InspectionImageFactory, ModelVersionFactory

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _classes(*names: str) -> dict[str, DefectClass]:
    return {name: DefectClass.objects.get_or_create(name=name)[0] for name in names}


def _texture(kind: str, seed: int) -> bytes:
    """A 200x200 grayscale surface like NEU's: fine stripes (crazing-like) or sparse spots."""
    pixels = tiny_model_surface("crazing" if kind == "stripes" else "inclusion", np.random.default_rng(seed), size=200)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _predicted(version, probabilities: dict[str, float], *, needs_review: bool = False, texture: str | None = None,
               **fields) -> InspectionImage:
    if texture:
        fields.update(_content=_texture(texture, seed=len(fields.get("source", "")) + 7 * InspectionImage.objects.count()),
                      width=200, height=200)
    image = InspectionImageFactory(status=ImageStatus.PREDICTED, **fields)
    ranked = sorted(probabilities.values(), reverse=True)
    Prediction.objects.create(
        image=image, model_version=version, label=DefectClass.objects.get(name=max(probabilities, key=probabilities.get)),
        confidence=ranked[0], probabilities=probabilities, needs_review=needs_review, ood_score=0.3,
        margin=ranked[0] - ranked[1],
    )
    images_latest_prediction_refresh(image_ids=[image.pk])
    return image


def _queue_order(page) -> list[int]:
    return [int(row.get_attribute("data-image-id")) for row in page.locator("#queue-table tbody tr[data-image-id]").all()]


def test_qa_labels_three_images_with_number_keys_confirms_one_and_sees_the_heatmap(page, users, tiny_model_dirs):
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    qa = users("qa", "qa-anna")
    _classes("crazing", "inclusion", "patches")
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    flagged = _predicted(version, {"crazing": 0.55, "inclusion": 0.45}, needs_review=True, source="line-1",
                         texture="stripes")
    unsure = _predicted(version, {"crazing": 0.6, "inclusion": 0.4}, source="line-1", texture="stripes")
    fairly_sure = _predicted(version, {"inclusion": 0.7, "crazing": 0.3}, source="line-2", texture="spots")
    sure = _predicted(version, {"crazing": 0.95, "inclusion": 0.05}, source="line-2", texture="stripes")

    log_in(page, "qa-anna")
    page.goto("/review/")
    assert _queue_order(page) == [flagged.pk, unsure.pk, fairly_sure.pk, sure.pk]
    assert page.locator('#queue-counts [data-count="need_person"] strong').inner_text() == "4"
    screenshot(page, "review-queue.png")

    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/review/{flagged.pk}/$"))
    page.keyboard.press("h")
    overlay = page.locator("#heatmap-overlay")
    overlay.wait_for(state="visible")
    page.wait_for_function("() => { const o = document.getElementById('heatmap-overlay');"
                           " return o.complete && o.naturalWidth === 200; }")
    assert page.locator("#heatmap-toggle").get_attribute("aria-pressed") == "true"
    coloured = page.evaluate("""() => {
        const overlay = document.getElementById('heatmap-overlay');
        const canvas = document.createElement('canvas');
        canvas.width = overlay.naturalWidth; canvas.height = overlay.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(overlay, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let shown = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) shown++;
        return shown / (canvas.width * canvas.height);
    }""")
    assert coloured > 0.05  # the predicted class has evidence somewhere: part of the overlay is coloured
    page.keyboard.press("h")
    overlay.wait_for(state="hidden")
    page.keyboard.press("h")
    overlay.wait_for(state="visible")
    screenshot(page, "review-view.png")
    # At 1366x768 the side panel does not scroll on its own and its History is in view.
    layout = page.evaluate("""() => {
        const panel = document.querySelector('.side-panel');
        return {panelScrolls: panel.scrollHeight > panel.clientHeight + 1 && getComputedStyle(panel).overflowY !== 'visible',
                historyBottom: document.querySelector('#history thead').getBoundingClientRect().bottom,
                height: window.innerHeight, scrolled: window.scrollY};
    }""")
    assert (page.viewport_size["width"], layout["height"]) == (1366, 768)
    assert not layout["panelScrolls"] and layout["scrolled"] == 0
    assert layout["historyBottom"] <= layout["height"], layout

    # Classes are numbered by name: 1 crazing, 2 inclusion, 3 patches.
    page.keyboard.press("2")
    page.wait_for_url(re.compile(rf"/review/{unsure.pk}/$"))
    # The note offers to take the decision back (tests/e2e/test_undo.py).
    assert page.locator("#saved-note").inner_text() == f"Saved: image {flagged.pk} labelled inclusion. Undo U"
    assert page.locator('#queue-counts [data-count="need_person"] strong').inner_text() == "3"
    page.keyboard.press("1")
    page.wait_for_url(re.compile(rf"/review/{fairly_sure.pk}/$"))
    page.keyboard.press("3")
    page.wait_for_url(re.compile(rf"/review/{sure.pk}/$"))
    page.keyboard.press("Enter")  # confirm the prediction (crazing)
    page.wait_for_url(re.compile(r"/review/$"))
    assert page.locator("#saved-note").inner_text() == f"Saved: image {sure.pk} labelled crazing. Undo U"
    assert page.locator('#queue-counts [data-count="need_person"] strong').inner_text() == "0"
    assert page.locator('#queue-counts [data-count="reviewed"] strong').inner_text() == "4"

    expected = {flagged.pk: "inclusion", unsure.pk: "crazing", fairly_sure.pk: "patches", sure.pk: "crazing"}
    reviews = list(Review.objects.select_related("label", "prediction").order_by("id"))
    assert [(r.image_id, r.label.name) for r in reviews] == list(expected.items())
    for review in reviews:
        assert review.reviewer == qa and review.previous_label is None
        assert review.prediction == Prediction.objects.get(image_id=review.image_id)
    for image in InspectionImage.objects.filter(pk__in=expected):
        assert (image.label.name, image.label_source, image.label_version) == (expected[image.pk], "review", 1)

    page.goto(f"/review/{flagged.pk}/?reviewed=all")
    history = page.locator("#history tbody tr").first.inner_text()
    assert "qa-anna" in history and "unlabelled → inclusion" in history

    page.goto("/dashboard/")
    assert page.locator('#queue-counts [data-count="need_person"] strong').inner_text() == "0"
    page.locator(".confusion img").wait_for(state="visible")
    assert page.evaluate("() => document.querySelector('.confusion img').naturalWidth") > 0
    screenshot(page, "dashboard.png", full_page=True)


def test_a_concurrent_decision_is_shown_instead_of_overwritten(page, users):
    from inspections.review.services.reviews import review_submit

    users("qa", "qa-ben")
    other = users("qa", "qa-cleo")
    _classes("crazing", "inclusion")
    image = _predicted(ModelVersionFactory(), {"crazing": 0.5, "inclusion": 0.5}, needs_review=True)

    log_in(page, "qa-ben")
    page.goto(f"/review/{image.pk}/")
    review_submit(image=image, label_name="inclusion", reviewer=other, expected_version=0)  # meanwhile
    page.keyboard.press("1")
    message = page.locator("#review-message")
    message.filter(has_text="someone else decided").wait_for()
    assert "inclusion" in message.inner_text()
    assert page.locator("#current-label").inner_text() == "inclusion"
    page.locator("#history tbody tr").filter(has_text="qa-cleo").wait_for()
    assert Review.objects.count() == 1

    page.keyboard.press("1")  # decide again, now knowing the current state
    page.wait_for_url(re.compile(r"/review/$"))
    image.refresh_from_db()
    assert image.label.name == "crazing" and image.label_version == 2
    assert [r.previous_label.name if r.previous_label else None for r in Review.objects.order_by("id")] == [None, "inclusion"]


def test_viewer_sees_the_image_but_cannot_label(page, users):
    users("viewer", "vic-viewer")
    _classes("crazing", "inclusion")
    image = _predicted(ModelVersionFactory(), {"crazing": 0.6, "inclusion": 0.4})

    log_in(page, "vic-viewer")
    assert page.locator('[data-nav="queue"]').count() == 1
    assert page.locator('[data-nav="upload"]').count() == 0
    page.goto(f"/review/{image.pk}/")
    assert page.locator(".label-button").count() == 0
    assert page.locator("#read-only-note").is_visible()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)

    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    api = page.request.post(f"/api/v1/images/{image.pk}/reviews/", data={"label": "crazing"},
                            headers={"X-CSRFToken": token, "Referer": page.url})
    assert api.status == 403
    form = page.request.post(f"/review/{image.pk}/decide/", form={"label": "crazing", "csrfmiddlewaretoken": token},
                             headers={"Referer": page.url})
    assert form.status == 403
    assert not Review.objects.exists()
    image.refresh_from_db()
    assert image.label is None and image.label_version == 0
