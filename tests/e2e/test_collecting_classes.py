"""A class with too few labelled images is shown as collecting, with how many more it needs, on the
training page and in the review view; its review key still labels with it."""

from __future__ import annotations

import re

import pytest

from inspections.catalog.selectors import class_readiness_list
from inspections.models import InspectionImage, Split
from tests.conftest import wait_for
from tests.factories import DefectClassFactory, InspectionImageFactory

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def crazing_ready_inclusion_collecting(settings):
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES = 4
    settings.STEELQC_CLASS_MIN_TEST_IMAGES = 2
    for name, splits in (("crazing", [Split.TRAIN] * 4 + [Split.VAL, Split.TEST, Split.TEST]),
                         ("inclusion", [Split.TRAIN, Split.TRAIN, Split.TEST])):
        for split in splits:
            InspectionImageFactory(label=DefectClassFactory(name=name), split=split)
    needed = class_readiness_list()["inclusion"].images_needed
    assert needed > 0
    return needed


def test_the_training_page_lists_a_collecting_class_with_what_it_needs(page, users, crazing_ready_inclusion_collecting):
    users("viewer", "viewer-ada")
    log_in(page, "viewer-ada")
    page.goto("/training/")
    inclusion = page.locator('#class-readiness tr[data-class="inclusion"]')
    assert inclusion.get_attribute("data-status") == "collecting"
    assert inclusion.locator("td").nth(2).inner_text() == "2" and inclusion.locator("td").nth(3).inner_text() == "1"
    assert inclusion.locator('[data-field="needed"]').inner_text() == (
        f"needs {crazing_ready_inclusion_collecting} more labelled images")
    crazing = page.locator('#class-readiness tr[data-class="crazing"]')
    assert crazing.get_attribute("data-status") == "active"
    assert crazing.locator('[data-field="needed"]').inner_text() == "–"


def test_the_review_view_says_a_class_is_collecting_and_its_key_still_labels(page, users,
                                                                             crazing_ready_inclusion_collecting):
    users("qa", "qa-bo")
    image = InspectionImageFactory()
    log_in(page, "qa-bo")
    page.goto(f"/review/{image.pk}/")
    note = page.locator('[data-collecting="inclusion"]')
    assert note.inner_text() == (f"collecting: needs {crazing_ready_inclusion_collecting} more labelled images "
                                 "before training includes it")
    assert page.locator('[data-collecting="crazing"]').count() == 0
    key = page.locator('.label-button[data-label="inclusion"]').get_attribute("data-key")
    page.keyboard.press(key)
    wait_for(lambda: InspectionImage.objects.filter(pk=image.pk, label__name="inclusion").exists(), timeout=20)
    page.wait_for_url(re.compile(r"/review/"))
