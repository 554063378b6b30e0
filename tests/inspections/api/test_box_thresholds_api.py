"""GET/PUT/PATCH model-versions/{id}/box-thresholds/: roles, bad input in the thresholds API's error
shape with nothing written, audit rows, If-Match; the decision thresholds' endpoint is unchanged."""

from __future__ import annotations

import pytest

from inspections.models import DecisionThresholdChange, ModelVersion
from inspections.registry.services.thresholds import box_threshold_default
from tests.factories import AnomalyVersionFactory, ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def _url(version_id: int) -> str:
    return f"/api/v1/model-versions/{version_id}/box-thresholds/"


@pytest.fixture
def version() -> ModelVersion:
    return ModelVersionFactory(classes=["crazing", "scratches"])


@pytest.mark.parametrize("caller", [None, "viewer", "integrator", "qa", "ml_admin", "superuser"])
def test_roles(caller, version):
    client = client_for(caller)
    read = client.get(_url(version.pk))
    write = client.put(_url(version.pk), {"thresholds": {"crazing": 0.5}}, format="json")
    patch = client.patch(_url(version.pk), {"thresholds": {"scratches": 0.4}}, format="json")
    if caller is None:
        assert {read.status_code, write.status_code, patch.status_code} == {401}
    elif caller in {"ml_admin", "superuser"}:
        assert read.status_code == write.status_code == patch.status_code == 200
    else:
        assert read.status_code == 200
        assert_error(write, 403, "permission_denied")
        assert_error(patch, 403, "permission_denied")
    version.refresh_from_db()
    expected = {"crazing": 0.5, "scratches": 0.4} if caller in {"ml_admin", "superuser"} else {}
    assert version.box_thresholds == expected


def test_read_gives_every_class_with_the_default(version):
    response = client_for("viewer").get(_url(version.pk))
    default = box_threshold_default()
    assert response["ETag"] == '"0"'
    assert response.json() == {"version": version.pk, "revision": 0, "default": default, "history": [],
                               "classes": [{"name": "crazing", "threshold": default, "default": default},
                                           {"name": "scratches", "threshold": default, "default": default}]}


def test_a_change_is_stored_audited_and_shown_in_the_history(version):
    client = client_for("ml_admin")
    response = client.put(_url(version.pk), {"thresholds": {"scratches": 0.65}, "note": "faint ones are glare"},
                          format="json")
    assert response.status_code == 200 and response["ETag"] == '"1"'
    body = response.json()
    assert {row["name"]: row["threshold"] for row in body["classes"]} == {"crazing": box_threshold_default(),
                                                                         "scratches": 0.65}
    (entry,) = body["history"]
    assert (entry["class_name"], entry["old"], entry["new"], entry["changed_by"], entry["note"], entry["revision"]) == (
        "scratches", box_threshold_default(), 0.65, client.user.username, "faint ones are glare", 1)
    change = DecisionThresholdChange.objects.get()
    assert (change.kind, change.changed_by) == ("box", client.user)
    # The decision thresholds' endpoint neither shows this change nor moved its revision.
    decision = client.get(f"/api/v1/model-versions/{version.pk}/thresholds/").json()
    assert decision["history"] == [] and decision["revision"] == 0


def test_unknown_version_is_404():
    assert_error(client_for("ml_admin").get(_url(987654)), 404)
    assert_error(client_for("ml_admin").put(_url(987654), {"thresholds": {"crazing": 0.5}}, format="json"), 404)


@pytest.mark.parametrize("body, code, field", [
    ({"thresholds": {"pitted_surface": 0.5}}, "invalid_thresholds", "pitted_surface"),  # not a class of the version
    ({"thresholds": {"crazing": 1.5}}, "invalid_thresholds", "crazing"),
    ({"thresholds": {"crazing": -0.1}}, "invalid_thresholds", "crazing"),
    ({"thresholds": {"crazing": "0.5"}}, "invalid_thresholds", "crazing"),  # not a number
    ({"thresholds": {"crazing": "high"}}, "invalid_thresholds", "crazing"),
    ({"thresholds": {"crazing": True}}, "invalid_thresholds", "crazing"),
    ({"thresholds": {"crazing": None}}, "invalid_thresholds", "crazing"),
    ({"thresholds": {}}, "invalid_thresholds", "thresholds"),
    ({"thresholds": [0.5]}, "invalid_thresholds", "thresholds"),
    ({}, "invalid_thresholds", "thresholds"),
    ({"thresholds": {"crazing": 0.7, "scratches": 2}}, "invalid_thresholds", "scratches"),  # all or nothing
    ({"thresholds": {"crazing": 0.7}, "note": "x" * 501}, "invalid_note", "note"),
])
def test_bad_input_is_400_and_changes_nothing(version, body, code, field):
    error = assert_error(client_for("ml_admin").put(_url(version.pk), body, format="json"), 400, code)
    assert field in error["details"]
    version.refresh_from_db()
    assert version.box_thresholds == {} and version.box_thresholds_revision == 0
    assert not DecisionThresholdChange.objects.exists()


@pytest.mark.parametrize("raw", ['{"thresholds": {"crazing": NaN}}', '{"thresholds": {"crazing": Infinity}}',
                                 '{"thresholds": {"crazing": 1e400}}', "not json"])
def test_nan_infinite_and_broken_json_are_400(version, raw):
    assert_error(client_for("ml_admin").generic("PUT", _url(version.pk), raw, content_type="application/json"), 400)
    assert not DecisionThresholdChange.objects.exists()


def test_if_match_refuses_a_stale_revision(version):
    client = client_for("ml_admin")
    assert client.put(_url(version.pk), {"thresholds": {"crazing": 0.7}}, format="json",
                      HTTP_IF_MATCH='"0"').status_code == 200
    assert_error(client.put(_url(version.pk), {"thresholds": {"crazing": 0.2}}, format="json", HTTP_IF_MATCH='"0"'),
                 412, "thresholds_changed")
    assert_error(client.put(_url(version.pk), {"thresholds": {"crazing": 0.2}}, format="json", HTTP_IF_MATCH="abc"),
                 400, "invalid_if_match")
    version.refresh_from_db()
    assert version.box_thresholds == {"crazing": 0.7}


def test_an_anomaly_version_answers_400_not_a_classifier():
    version = AnomalyVersionFactory()
    assert_error(client_for("ml_admin").put(_url(version.pk), {"thresholds": {"crazing": 0.5}}, format="json"),
                 400, "not_a_classifier")
