"""Class names are data: ensuring classes exist is safe beside another process doing the same."""

from __future__ import annotations

import pytest

from inspections.catalog.services import classes as class_services
from inspections.models import DefectClass

pytestmark = pytest.mark.django_db


def test_missing_classes_are_created_once_and_returned():
    found = class_services.defect_classes_ensure(names=["Oil Stain", "crazing"])
    assert set(found) == {"oil_stain", "crazing"}
    again = class_services.defect_classes_ensure(names=["oil_stain"])
    assert again["oil_stain"].pk == found["oil_stain"].pk
    assert DefectClass.objects.filter(name="oil_stain").count() == 1


def test_a_class_another_process_created_after_the_lookup_is_returned_not_an_error(monkeypatch):
    # Another process commits "oil_stain" between this call's lookup and its insert: the lookup below
    # misses it once, as it would have.
    existing = DefectClass.objects.create(name="oil_stain")
    real_filter, calls = DefectClass.objects.filter, []

    def first_lookup_misses(*args, **kwargs):
        calls.append(kwargs)
        return real_filter(*args, **kwargs) if len(calls) > 1 else DefectClass.objects.none()

    monkeypatch.setattr(DefectClass.objects, "filter", first_lookup_misses)
    found = class_services.defect_classes_ensure(names=["oil_stain"])
    assert found["oil_stain"].pk == existing.pk
    assert real_filter(name="oil_stain").count() == 1


def test_an_invalid_name_is_refused_and_nothing_is_created():
    with pytest.raises(class_services.ApplicationError) as refused:
        class_services.defect_classes_ensure(names=["ok_name", "bad/name"])
    assert refused.value.code == "invalid_class_name"
    assert not DefectClass.objects.filter(name="ok_name").exists()
