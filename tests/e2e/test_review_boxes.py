"""The review view draws defect boxes: QA draws one with the mouse, gives it a class with a
number key, moves, resizes and deletes it, accepts the model's boxes with A — and does the same
with the keyboard alone; a change against boxes someone else changed meanwhile is refused (409),
said so and reloaded; a viewer sees the boxes and changes nothing. Each step is checked in the
database."""

from __future__ import annotations

import re

import pytest
from django.apps import apps

from inspections.models import (
    BoxSource,
    DefectBox,
    DefectBoxChange,
    DefectClass,
    ImageStatus,
    InspectionImage,
    ModelVersionStatus,
    Prediction,
    Review,
)
from inspections.review.services.boxes import boxes_change
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.conftest import wait_for
from tests.factories import InspectionImageFactory, ModelVersionFactory, image_bytes

from .conftest import log_in, screenshot

# Every app listed (as in test_line_dashboard): the migrations' rows are made when the test starts
# and not remade in the flush after it, so the serialized_rollback browser tests that follow load
# their saved rows into the empty tables they expect.
pytestmark = pytest.mark.django_db(transaction=True,
                                   available_apps=[config.name for config in apps.get_app_configs()])

FOUND = [{"label": "scratches", "box": [0.6, 0.1, 0.9, 0.8], "score": 0.87},
         {"label": "crazing", "box": [0.05, 0.6, 0.3, 0.85], "score": 0.55}]


def _classes() -> dict[str, DefectClass]:
    return {name: DefectClass.objects.get_or_create(name=name)[0] for name in ("crazing", "inclusion", "scratches")}


def _image(boxes=FOUND):
    classes = _classes()
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    image = InspectionImageFactory(status=ImageStatus.PREDICTED, width=200, height=200,
                                   _content=image_bytes(seed=11, size=(200, 200)))
    Prediction.objects.create(image=image, model_version=version, label=classes["scratches"], confidence=0.8,
                              margin=0.6, probabilities={"scratches": 0.8, "crazing": 0.2}, needs_review=True,
                              ood_score=0.2, boxes=boxes)
    images_latest_prediction_refresh(image_ids=[image.pk])
    return image, version


def _active(image) -> list[DefectBox]:
    return list(DefectBox.objects.filter(image=image, deleted_at__isnull=True).select_related("label").order_by("id"))


def _coords(box: DefectBox) -> list[float]:
    return [box.x0, box.y0, box.x1, box.y1]


def _near(values, expected, tolerance=0.012) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(values, expected))


def _key(page, label: str) -> str:
    return page.locator(f'.label-button[data-label="{label}"]').get_attribute("data-key")


class Layer:
    """Mouse positions as fractions of the image under the box layer."""

    def __init__(self, page):
        self.page = page
        self.rect = page.locator("#box-layer").bounding_box()

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        return self.rect["x"] + fx * self.rect["width"], self.rect["y"] + fy * self.rect["height"]

    def drag(self, start, end) -> None:
        self.page.mouse.move(*self.at(*start))
        self.page.mouse.down()
        self.page.mouse.move(*self.at((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), steps=4)
        self.page.mouse.move(*self.at(*end), steps=4)
        self.page.mouse.up()


def _open(page, image) -> None:
    page.goto(f"/review/{image.pk}/")
    page.wait_for_function("() => /version \\d+/.test(document.getElementById('box-summary').textContent)")


def test_qa_draws_classes_moves_resizes_deletes_a_box_and_accepts_the_models(page, users):
    qa = users("qa", "qa-bea")
    image, version = _image()
    log_in(page, "qa-bea")
    _open(page, image)
    predicted = page.locator("#box-layer .defect-box.predicted")
    assert predicted.locator(".defect-box-name").all_text_contents() == ["scratches 0.87", "crazing 0.55"]
    assert page.locator("#box-layer .defect-box.predicted rect").first.get_attribute("stroke") != \
        page.locator("#box-layer .defect-box.predicted rect").last.get_attribute("stroke")  # class colours
    layer = Layer(page)

    layer.drag((0.1, 0.1), (0.4, 0.4))
    page.locator('#box-layer [data-box-id="draft"]').wait_for()
    page.keyboard.press(_key(page, "inclusion"))
    (drawn,) = wait_for(lambda: _active(image) or None, timeout=20)
    assert (drawn.label.name, drawn.source, drawn.created_by_id) == ("inclusion", BoxSource.PERSON, qa.pk)
    assert _near(_coords(drawn), [0.1, 0.1, 0.4, 0.4]), _coords(drawn)
    image.refresh_from_db()
    assert (image.label_id, image.label_version, Review.objects.count()) == (None, 0, 0)  # the key went to the box
    page.wait_for_function(f"() => {{ const n = document.querySelector('#box-layer [data-box-id=\"{drawn.pk}\"] text');"
                           " return n && n.textContent === 'inclusion'; }")

    layer.drag((0.25, 0.25), (0.35, 0.3))  # move by (+0.1, +0.05)
    wait_for(lambda: _near(_coords(DefectBox.objects.get(pk=drawn.pk)), [0.2, 0.15, 0.5, 0.45]), timeout=20)

    handle = page.locator('#box-layer .defect-box-handle[data-corner="se"]')
    page.wait_for_function("() => { const h = document.querySelector('#box-layer [data-corner=se]');"
                           " return h && Math.abs(parseFloat(h.getAttribute('cx')) - 50) < 1.5; }")
    # Each answer from the server draws the layer again, handles included: measure one that is there.
    handle_box = wait_for(handle.bounding_box, timeout=20)
    page.mouse.move(handle_box["x"] + handle_box["width"] / 2, handle_box["y"] + handle_box["height"] / 2)
    page.mouse.down()
    page.mouse.move(*layer.at(0.55, 0.6), steps=4)
    page.mouse.move(*layer.at(0.6, 0.7), steps=4)
    page.mouse.up()
    wait_for(lambda: _near(_coords(DefectBox.objects.get(pk=drawn.pk)), [0.2, 0.15, 0.6, 0.7]), timeout=20)
    screenshot(page, "review-boxes.png")

    page.keyboard.press("Delete")
    wait_for(lambda: DefectBox.objects.get(pk=drawn.pk).deleted_at is not None, timeout=20)
    page.locator(f'#box-layer [data-box-id="{drawn.pk}"]').wait_for(state="detached")

    page.keyboard.press("a")
    accepted = wait_for(lambda: len(_active(image)) == 2 and _active(image), timeout=20)
    assert [(b.label.name, b.source, b.model_version_id, b.created_by_id) for b in accepted] == [
        ("scratches", BoxSource.MODEL, version.pk, qa.pk), ("crazing", BoxSource.MODEL, version.pk, qa.pk)]
    assert [_coords(b) for b in accepted] == [found["box"] for found in FOUND]
    page.wait_for_function("() => document.querySelectorAll('#box-layer .defect-box.predicted').length === 0")
    assert page.locator("#box-layer .defect-box[data-box-id]").count() == 2
    assert page.locator("#boxes-accept").is_disabled()

    history = list(DefectBoxChange.objects.filter(image=image).order_by("id").values_list("action", "after"))
    assert [action for action, _ in history] == ["drawn", "moved", "moved", "deleted", "drawn", "drawn"]
    assert [after.get("from_model") for action, after in history[4:]] == [version.pk, version.pk]
    image.refresh_from_db()
    assert image.boxes_version == 5

    page.keyboard.press("b")
    page.locator("#box-layer").wait_for(state="hidden")
    assert page.locator("#boxes-toggle").get_attribute("aria-pressed") == "false"
    page.keyboard.press("b")
    page.locator("#box-layer").wait_for(state="visible")


def _tab_to_a_box(page) -> str:
    for _ in range(60):
        page.keyboard.press("Tab")
        box_id = page.evaluate("() => document.activeElement && document.activeElement.getAttribute('data-box-id')")
        if box_id:
            return box_id
    raise AssertionError("Tab never reached a box")


def test_qa_does_it_all_with_the_keyboard(page, users):
    users("qa", "qa-kim")
    image, version = _image(boxes=FOUND[:1])
    imported = DefectBox.objects.create(image=image, label=DefectClass.objects.get(name="crazing"), x0=0.1, y0=0.1,
                                        x1=0.3, y1=0.3, source=BoxSource.IMPORT)
    log_in(page, "qa-kim")
    _open(page, image)

    assert _tab_to_a_box(page) == str(imported.pk)
    page.keyboard.press(_key(page, "inclusion"))
    wait_for(lambda: DefectBox.objects.get(pk=imported.pk).label.name == "inclusion", timeout=20)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    wait_for(lambda: _near(_coords(DefectBox.objects.get(pk=imported.pk)), [0.13, 0.1, 0.33, 0.3], 1e-6), timeout=20)
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("Shift+ArrowDown")
    wait_for(lambda: _near(_coords(DefectBox.objects.get(pk=imported.pk)), [0.13, 0.1, 0.33, 0.32], 1e-6), timeout=20)
    page.keyboard.press("Delete")
    wait_for(lambda: DefectBox.objects.get(pk=imported.pk).deleted_at is not None, timeout=20)

    page.keyboard.press("e")  # a new box in the middle
    page.locator('#box-layer [data-box-id="draft"]').wait_for()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press(_key(page, "crazing"))
    (new,) = wait_for(lambda: _active(image) or None, timeout=20)
    page.locator(f'#box-layer [data-box-id="{new.pk}"].is-selected').wait_for()  # the page has its answer
    assert (new.label.name, new.source) == ("crazing", BoxSource.PERSON)
    assert _near(_coords(new), [0.39, 0.4, 0.6, 0.6], 1e-6), _coords(new)

    page.keyboard.press("Escape")  # done with the box: the label keys label the image again
    page.keyboard.press("a")
    wait_for(lambda: len(_active(image)) == 2, timeout=20)
    assert [(b.label.name, b.source, b.model_version_id) for b in _active(image)] == [
        ("crazing", BoxSource.PERSON, None), ("scratches", BoxSource.MODEL, version.pk)]
    page.keyboard.press(_key(page, "scratches"))
    review = wait_for(lambda: Review.objects.filter(image=image).first(), timeout=20)
    assert review.label.name == "scratches"
    assert list(DefectBoxChange.objects.filter(image=image).order_by("id").values_list("action", flat=True)) == [
        "relabelled", "moved", "moved", "deleted", "drawn", "drawn"]


def test_a_change_against_boxes_someone_changed_meanwhile_is_refused_and_reloaded(page, users):
    users("qa", "qa-lee")
    other = users("qa", "qa-max")
    image, _ = _image(boxes=[])
    log_in(page, "qa-lee")
    _open(page, image)
    boxes_change(image=InspectionImage.objects.get(pk=image.pk), expected_version=0, actor=other,
                 changes=[{"op": "add", "label": "scratches", "box": [0.5, 0.5, 0.8, 0.8]}])

    layer = Layer(page)
    layer.drag((0.1, 0.1), (0.3, 0.3))
    page.keyboard.press(_key(page, "inclusion"))
    message = page.locator("#review-message")
    page.wait_for_function("() => /someone else changed/.test(document.getElementById('review-message').textContent)")
    assert "is-error" in (message.get_attribute("class") or "")
    assert "version 1" in message.inner_text()
    page.locator("#box-layer .defect-box[data-box-id]:not(.is-draft)").first.wait_for()  # the other's box, reloaded
    assert [b.label.name for b in _active(image)] == ["scratches"]
    assert "still here" in message.inner_text()
    assert page.locator('#box-layer [data-box-id="draft"]').count() == 1  # kept, to add again knowing the change

    page.keyboard.press(_key(page, "inclusion"))
    wait_for(lambda: len(_active(image)) == 2, timeout=20)
    assert [b.label.name for b in _active(image)] == ["scratches", "inclusion"]
    assert _near(_coords(_active(image)[1]), [0.1, 0.1, 0.3, 0.3])
    image.refresh_from_db()
    assert image.boxes_version == 2
    page.wait_for_function("() => /Boxes saved \\(version 2\\)/.test(document.getElementById('review-message').textContent)")

    layer.drag((0.05, 0.5), (0.2, 0.7))  # a new box without a class keeps the page
    page.locator('#box-layer [data-box-id="draft"]').wait_for()
    page.keyboard.press("s")
    page.wait_for_function("() => /has no class yet/.test(document.getElementById('review-message').textContent)")
    assert page.url.endswith(f"/review/{image.pk}/")
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.wait_for_url(re.compile(r"/review/$"))
    assert len(_active(image)) == 2


def test_a_viewer_sees_the_boxes_and_changes_nothing(page, users):
    users("viewer", "viewer-ola")
    image, _ = _image(boxes=FOUND[:1])
    DefectBox.objects.create(image=image, label=DefectClass.objects.get(name="crazing"), x0=0.1, y0=0.1,
                             x1=0.2999999890618, y1=0.3, source=BoxSource.IMPORT)
    log_in(page, "viewer-ola")
    _open(page, image)
    assert page.locator("#box-layer .defect-box[data-box-id]").count() == 1
    assert page.locator("#box-list li[data-box-id] .box-where").text_content() == " · x 0.10–0.30, y 0.10–0.30"
    assert page.locator("#box-layer .defect-box.predicted").count() == 1
    assert page.locator("#boxes-accept").count() == 0
    Layer(page).drag((0.5, 0.5), (0.7, 0.7))
    assert page.locator('#box-layer [data-box-id="draft"]').count() == 0
    page.keyboard.press("a")
    page.wait_for_function("() => /not change them/.test(document.getElementById('review-message').textContent)")
    assert len(_active(image)) == 1 and not DefectBoxChange.objects.exists()
    assert re.search(r"1 on the image · 1 from the model", page.locator("#box-summary").inner_text())
