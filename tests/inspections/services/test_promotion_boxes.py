"""The gate's mAP is measured on the test images that have defect boxes: their current boxes,
read for the whole test split with one query."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils import timezone

from inspections.models import BoxSource, DefectBox
from inspections.registry.services.promotion import _test_boxes
from tests.factories import DefectClassFactory, InspectionImageFactory

pytestmark = pytest.mark.django_db


def _box(image, label, corners, **extra):
    x0, y0, x1, y1 = corners
    return DefectBox.objects.create(image=image, label=label, x0=x0, y0=y0, x1=x1, y1=y1,
                                    source=BoxSource.IMPORT, **extra)


def test_the_test_images_boxes_come_from_one_query_in_item_order(django_assert_num_queries):
    images = [InspectionImageFactory(width=40 + n, height=30) for n in range(4)]
    crazing, pits = DefectClassFactory(name="crazing"), DefectClassFactory(name="pits")
    _box(images[3], crazing, (0.5, 0.5, 0.75, 1.0))
    _box(images[0], crazing, (0.1, 0.2, 0.5, 0.6))
    _box(images[0], pits, (0.0, 0.0, 0.25, 0.25))
    _box(images[2], pits, (0.1, 0.1, 0.2, 0.2), deleted_at=timezone.now())  # deleted: not a box any more
    items = [SimpleNamespace(image_id=image.pk, image=image) for image in images]
    with django_assert_num_queries(1):
        rows, truth, sizes = _test_boxes(items)
    assert rows == [0, 3]
    assert truth == [[("crazing", 0.1, 0.2, 0.5, 0.6), ("pits", 0.0, 0.0, 0.25, 0.25)],
                     [("crazing", 0.5, 0.5, 0.75, 1.0)]]
    assert sizes == [(40, 30), (43, 30)]
