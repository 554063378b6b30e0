"""In a browser, with the real worker predicting and storing descriptors: the review view shows
the nearest look-alikes of an image, and a QA person names a whole group of foreign images as a
new class from the look-alike groups page (one review per image), after a confirmation that
says how many, and undoes it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inspections.models import DefectClass, Prediction, Review
from tests.data import tiny_model_surface

from .conftest import log_in, screenshot, uploaded_and_predicted

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def active_model(tiny_model_dirs):
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    return model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))


def test_the_review_view_shows_the_nearest_look_alikes_and_links_to_them(page, users, celery_worker, active_model):
    from skimage import data

    users("qa", "qa-lena")
    rng = np.random.default_rng(11)
    coil, _ = uploaded_and_predicted(tiny_model_surface("crazing", rng), "coil.png")
    twin, _ = uploaded_and_predicted(tiny_model_surface("crazing", rng), "coil-twin.png")
    photo, _ = uploaded_and_predicted(data.astronaut(), "astronaut.png")
    assert Prediction.objects.filter(embedding__isnull=False).count() == 3

    log_in(page, "qa-lena")
    page.goto(f"/review/{coil.pk}/")
    strip = page.locator("#similar-list li")
    strip.first.wait_for()
    assert [int(i) for i in strip.evaluate_all("items => items.map(li => li.dataset.imageId)")] == [twin.pk, photo.pk]
    assert "model: crazing" in strip.first.inner_text()
    # The thumbnail is added by script after the strip's fetch: wait for its bytes, then check it decoded.
    page.wait_for_function("() => { const img = document.querySelector('#similar-list img');"
                           " return img !== null && img.complete; }")
    assert page.locator("#similar-list img").first.evaluate("img => img.naturalWidth") > 0
    screenshot(page, "review-similar-images.png")
    strip.first.locator("a").click()
    page.wait_for_url(re.compile(rf"/review/{twin.pk}/"))
    page.locator("#similar-list li").first.wait_for()
    assert page.locator("#similar-list li").first.get_attribute("data-image-id") == str(coil.pk)


def test_a_group_of_foreign_images_is_named_as_a_new_class_at_once(page, users, celery_worker, active_model,
                                                                       settings):
    from skimage import data

    # Every foreign image within reach of every other: the three photos form one group.
    settings.STEELQC_NOVELTY_GROUP_RADIUS = 10.0
    users("qa", "qa-mira")
    photos = [uploaded_and_predicted(array, name) for array, name in [
        (data.astronaut(), "astronaut.png"), (data.coffee(), "coffee.png"), (data.chelsea(), "chelsea.png")]]
    for _, prediction in photos:
        assert "foreign" in prediction.review_reasons, prediction.review_reasons
    coil, coil_prediction = uploaded_and_predicted(tiny_model_surface("patches", np.random.default_rng(4)), "coil.png")
    assert "foreign" not in coil_prediction.review_reasons

    log_in(page, "qa-mira")
    page.goto("/review/groups/")
    group = page.locator(".novelty-group")
    assert group.count() == 1
    assert group.get_attribute("data-size") == "3"
    shown = {int(i) for i in group.locator("img.group-thumb").evaluate_all("imgs => imgs.map(i => i.dataset.imageId)")}
    assert shown == {image.pk for image, _ in photos}
    # The class menu starts at the model's most frequent guess for the group.
    guesses = [prediction.label.name for _, prediction in photos]
    majority = sorted(set(guesses), key=lambda name: (-guesses.count(name), name))[0]
    assert group.locator(".group-label select").input_value() == majority
    assert majority in group.locator("h2").inner_text()

    group.locator(".group-new-class input[name=name]").fill("stray photo")
    group.locator(".group-new-class button").click()
    confirm = group.locator(".group-confirm")
    assert confirm.inner_text().startswith("Add the class stray photo and label all 3 images of this group with it?")
    screenshot(page, "novelty-groups.png")
    assert not DefectClass.objects.filter(name="stray_photo").exists()  # nothing happens before yes
    confirm.locator(".group-confirm-yes").click()
    result = group.locator(".group-result")
    result.filter(has_text="Labelled 3 images").wait_for()
    assert result.inner_text() == "Labelled 3 images as stray_photo (a new class)."
    assert DefectClass.objects.filter(name="stray_photo").exists()
    for image, _ in photos:
        image.refresh_from_db()
        assert image.label.name == "stray_photo" and image.label_version == 1
        assert list(Review.objects.filter(image=image).values_list("label__name", "decision")) == [
            ("stray_photo", "label")]
    assert not Review.objects.filter(image=coil).exists()

    # Undo: one more review per image, each image back as it was (unlabelled, in its group again).
    last = page.locator("#last-bulk")
    assert last.locator(".last-bulk-text").inner_text() == (
        "Your last bulk decision: labelled 3 images as stray_photo (a new class).")
    last.locator(".last-bulk-undo").click()
    page.locator("#last-bulk").filter(has_text="undone").wait_for()
    assert "those images are back as they were" in page.locator("#last-bulk").inner_text()
    assert page.locator("#last-bulk .last-bulk-undo").is_hidden()
    assert page.locator(".novelty-group").count() == 1
    for image, _ in photos:
        image.refresh_from_db()
        assert image.label is None and image.label_version == 2
        assert list(Review.objects.filter(image=image).order_by("id").values_list("decision", "reviewer__username")) == [
            ("label", "qa-mira"), ("undo", "qa-mira")]
