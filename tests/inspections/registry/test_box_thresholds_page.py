"""The version page's "Box thresholds" editor: every role reads them, ml_admin saves them (audited),
a bad value is said and changes nothing, a stale form is refused."""

from __future__ import annotations

import pytest
from django.urls import reverse

from inspections.models import DecisionThresholdChange
from tests.factories import ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def version():
    return ModelVersionFactory(classes=["crazing", "scratches"],
                               metrics={"detection": {"map50": 0.61, "map50_95": 0.3, "images": 12, "boxes": 20,
                                                      "split": "test", "implementation": "pycocotools",
                                                      "per_class": {"scratches": {"ap50": 0.734, "ap50_95": 0.4,
                                                                                  "boxes": 9}}}})


def _as(client, role):
    user = UserFactory(roles=[role])
    client.force_login(user)
    return user


def _save(client, version, **fields):
    return client.post(reverse("registry:model-version-box-thresholds", args=[version.pk]),
                       {"revision": str(version.box_thresholds_revision), **fields}, follow=True)


def test_every_role_sees_each_classs_box_threshold_default_and_ap(client, version):
    _as(client, "viewer")
    page = client.get(reverse("registry:model-version", args=[version.pk])).content.decode()
    section = page[page.index('id="box-thresholds"'):]
    assert "Box thresholds" in section and "Default 0.3" in section
    assert 'data-box-class="scratches"' in section and "0.734" in section
    assert 'name="box-threshold-crazing"' not in section  # a viewer gets no inputs


def test_an_ml_admin_saves_a_box_threshold_and_it_is_audited(client, version):
    admin = _as(client, "ml_admin")
    response = _save(client, version, **{"box-threshold-scratches": "0.55", "box-threshold-crazing": "0.3",
                                         "note": "glare"})
    assert "Box thresholds of" in response.content.decode()
    version.refresh_from_db()
    assert version.box_thresholds == {"scratches": 0.55}  # crazing kept its default value: no change, no row
    change = DecisionThresholdChange.objects.get()
    assert (change.kind, change.class_name, change.new_threshold, change.changed_by, change.note) == (
        "box", "scratches", 0.55, admin, "glare")
    page = response.content.decode()
    assert 'id="box-threshold-history"' in page and "0.3 → 0.55" in page


@pytest.mark.parametrize("value, said", [("1.5", "from 0 to 1"), ("-0.2", "from 0 to 1"), ("high", "a number")])
def test_a_bad_value_is_said_and_changes_nothing(client, version, value, said):
    _as(client, "ml_admin")
    response = _save(client, version, **{"box-threshold-scratches": value, "box-threshold-crazing": "0.4"})
    assert said in response.content.decode()
    version.refresh_from_db()
    assert version.box_thresholds == {} and not DecisionThresholdChange.objects.exists()


def test_a_stale_form_is_refused(client, version):
    _as(client, "ml_admin")
    _save(client, version, **{"box-threshold-crazing": "0.4"})
    response = client.post(reverse("registry:model-version-box-thresholds", args=[version.pk]),
                           {"revision": "0", "box-threshold-crazing": "0.9"}, follow=True)
    assert "changed meanwhile" in response.content.decode()
    version.refresh_from_db()
    assert version.box_thresholds == {"crazing": 0.4}


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_other_roles_cannot_save(client, version, role):
    _as(client, role)
    response = client.post(reverse("registry:model-version-box-thresholds", args=[version.pk]),
                           {"revision": "0", "box-threshold-crazing": "0.9"})
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.box_thresholds == {}
