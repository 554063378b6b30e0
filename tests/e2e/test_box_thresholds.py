"""Box thresholds in Chromium: the review view labels each of the model's boxes with its score,
hides those under their class's box threshold and says how many, shows them faintly on request,
and "accept the model's boxes" (A) takes only the boxes above their thresholds; an ML admin sets a
class's box threshold on the version page and the review view follows it. Checked in the database."""

from __future__ import annotations

import pytest
from django.apps import apps

from inspections.models import (
    BoxSource,
    DecisionThresholdChange,
    DefectBox,
    DefectClass,
    ImageStatus,
    ModelVersionStatus,
    Prediction,
)
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.conftest import wait_for
from tests.factories import InspectionImageFactory, ModelVersionFactory, image_bytes

from .conftest import log_in, screenshot

# As in test_review_boxes: every app listed, so the serialized_rollback tests after this one find
# the migrations' rows.
pytestmark = pytest.mark.django_db(transaction=True,
                                   available_apps=[config.name for config in apps.get_app_configs()])

# Under the default box threshold (0.3): the faint scratches and the faint crazing.
FOUND = [{"label": "scratches", "box": [0.6, 0.1, 0.9, 0.8], "score": 0.82},
         {"label": "crazing", "box": [0.05, 0.6, 0.3, 0.85], "score": 0.47},
         {"label": "scratches", "box": [0.1, 0.1, 0.25, 0.3], "score": 0.21},
         {"label": "crazing", "box": [0.4, 0.4, 0.5, 0.5], "score": 0.12}]


def _image():
    classes = {name: DefectClass.objects.get_or_create(name=name)[0] for name in ("crazing", "scratches")}
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, classes=["crazing", "scratches"])
    image = InspectionImageFactory(status=ImageStatus.PREDICTED, width=200, height=200,
                                   _content=image_bytes(seed=12, size=(200, 200)))
    Prediction.objects.create(image=image, model_version=version, label=classes["scratches"], confidence=0.8,
                              margin=0.6, probabilities={"scratches": 0.8, "crazing": 0.2}, needs_review=True,
                              ood_score=0.2, boxes=FOUND)
    images_latest_prediction_refresh(image_ids=[image.pk])
    return image, version


def _open(page, image) -> None:
    page.goto(f"/review/{image.pk}/")
    page.wait_for_function("() => /version \\d+/.test(document.getElementById('box-summary').textContent)")


def _names(page) -> list[str]:
    return page.locator("#box-layer .defect-box.predicted .defect-box-name").all_text_contents()


def test_boxes_under_their_threshold_are_hidden_counted_shown_on_request_and_not_accepted(page, users):
    qa = users("qa", "qa-ines")
    image, version = _image()
    log_in(page, "qa-ines")
    _open(page, image)

    assert _names(page) == ["scratches 0.82", "crazing 0.47"]  # each shown box with its score
    note = page.locator("#boxes-hidden")
    assert note.is_visible() and page.locator("#boxes-hidden-count").inner_text() == "2 boxes under threshold hidden."

    page.click("#boxes-hidden-toggle")
    page.wait_for_function("() => document.querySelectorAll('#box-layer .defect-box.predicted').length === 4")
    assert _names(page) == ["scratches 0.82", "crazing 0.47", "scratches 0.21", "crazing 0.12"]
    assert page.locator("#box-layer .defect-box.predicted.below-threshold").count() == 2
    assert "shown faintly" in page.locator("#boxes-hidden-count").inner_text()
    assert page.locator("#box-list li.below-threshold").count() == 2
    screenshot(page, "review-boxes-under-threshold.png")

    page.keyboard.press("a")  # accept the model's boxes: the two above their threshold only
    accepted = wait_for(lambda: list(DefectBox.objects.filter(image=image).select_related("label").order_by("id"))
                        or None, timeout=20)
    page.wait_for_function("() => document.getElementById('review-message').textContent.includes('not taken')")
    assert [(b.label.name, b.source, b.model_version_id, b.created_by_id, [b.x0, b.y0, b.x1, b.y1])
            for b in accepted] == [("scratches", BoxSource.MODEL, version.pk, qa.pk, FOUND[0]["box"]),
                                   ("crazing", BoxSource.MODEL, version.pk, qa.pk, FOUND[1]["box"])]
    assert "2 under threshold not taken" in page.locator("#review-message").inner_text()
    assert page.locator("#boxes-accept").is_disabled()

    page.click("#boxes-hidden-toggle")  # hide them again: nothing of the model's is left on the layer
    page.wait_for_function("() => document.querySelectorAll('#box-layer .defect-box.predicted').length === 0")
    assert page.locator("#boxes-hidden-count").inner_text() == "2 boxes under threshold hidden."
    page.keyboard.press("a")
    page.wait_for_function("() => document.getElementById('review-message').textContent.includes('under their')")
    assert DefectBox.objects.filter(image=image).count() == 2


def test_an_ml_admin_lowers_a_box_threshold_and_the_review_view_offers_the_box(page, users):
    users("ml_admin", "ml-jon")
    image, version = _image()
    log_in(page, "ml-jon")
    page.goto(f"/models/{version.pk}/#box-thresholds")
    section = page.locator("#box-thresholds")
    assert "Box thresholds" in section.inner_text()
    assert page.locator("#box-threshold-scratches").input_value() == "0.3"
    page.fill("#box-threshold-scratches", "0.2")
    page.fill("#box-threshold-note", "faint scratches are real on line 2")
    page.click("#box-thresholds-save")
    history = page.locator("#box-threshold-history")
    history.wait_for()
    row = history.locator("tbody tr").first.inner_text()
    assert "scratches" in row and "0.3 → 0.2" in row and "ml-jon" in row and "line 2" in row
    change = DecisionThresholdChange.objects.get(model_version=version)
    assert (change.kind, change.class_name, change.new_threshold) == ("box", "scratches", 0.2)

    _open(page, image)
    assert _names(page) == ["scratches 0.82", "crazing 0.47", "scratches 0.21"]
    assert page.locator("#boxes-hidden-count").inner_text() == "1 box under threshold hidden."
    page.click("#boxes-accept")
    wait_for(lambda: DefectBox.objects.filter(image=image).count() == 3 or None, timeout=20)
    assert sorted(DefectBox.objects.filter(image=image).values_list("label__name", "x0")) == [
        ("crazing", 0.05), ("scratches", 0.1), ("scratches", 0.6)]
