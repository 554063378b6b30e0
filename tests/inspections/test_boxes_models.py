"""The database itself refuses defect boxes outside the image, inverted or NaN, with an unknown
class or a model source without a version; the box history cannot be edited."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from inspections.models import DefectBox, DefectBoxChange, DefectClass
from tests.factories import InspectionImageFactory, ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _box(**overrides) -> DefectBox:
    values = {"x0": 0.1, "y0": 0.2, "x1": 0.5, "y1": 0.6, "source": "person"}
    values.update(overrides)
    image = values.pop("image", None) or InspectionImageFactory()
    label = values.pop("label", None) or DefectClass.objects.get(name="crazing")
    return DefectBox.objects.create(image=image, label=label, **values)


def test_a_box_inside_the_image_is_stored():
    box = _box(x0=0.0, y0=0.0, x1=1.0, y1=1.0)
    assert DefectBox.objects.get(pk=box.pk).x1 == 1.0


@pytest.mark.parametrize("coordinates", [
    {"x0": -0.01}, {"y0": -0.5}, {"x1": 1.01}, {"y1": 2.0},
    {"x0": 0.5, "x1": 0.5}, {"x0": 0.6, "x1": 0.5}, {"y0": 0.7, "y1": 0.6},
    {"x0": float("nan")}, {"x1": float("nan")}, {"y0": float("nan")}, {"y1": float("inf")},
    {"x0": float("-inf")},
])
def test_the_database_refuses_boxes_outside_the_image_inverted_or_nan(coordinates):
    image = InspectionImageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        _box(image=image, **coordinates)
    assert not DefectBox.objects.filter(image=image).exists()


def test_the_database_refuses_an_unknown_class_or_source():
    image = InspectionImageFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        _box(image=image, label=DefectClass(pk=987654, name="ghost"))
        connection.check_constraints(table_names=["inspections_defectbox"])  # foreign keys are deferred
    with pytest.raises(IntegrityError), transaction.atomic():
        _box(image=image, source="guess")
    assert not DefectBox.objects.filter(image=image).exists()


def test_a_model_box_names_its_version():
    with pytest.raises(IntegrityError), transaction.atomic():
        _box(source="model")
    assert _box(source="model", model_version=ModelVersionFactory()).model_version_id is not None


def test_the_box_history_is_append_only():
    box = _box()
    change = DefectBoxChange.objects.create(box=box, image=box.image, action="drawn", after={"label": "crazing"},
                                            changed_by=UserFactory(), boxes_version=1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        DefectBoxChange.objects.filter(pk=change.pk).update(action="deleted")
    with pytest.raises(IntegrityError), transaction.atomic():
        DefectBoxChange.objects.create(box=box, image=box.image, action="resized", changed_by=change.changed_by,
                                       boxes_version=2)
    assert DefectBoxChange.objects.get(pk=change.pk).action == "drawn"
