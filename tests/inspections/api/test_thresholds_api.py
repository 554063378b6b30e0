"""GET/PUT/PATCH model-versions/{id}/thresholds/: roles, bad input in the usual error shape, audit rows."""

from __future__ import annotations

import pytest

from inspections.models import DecisionThresholdChange, DefectClass, ModelVersion
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

CURVES = {"crazing": {"thresholds": [0.0, 0.5, 1.0], "precision": [0.8, 0.9, None], "auto_accept": [1.0, 0.6, 0.0],
                      "predicted": 5}}


def _url(version_id: int) -> str:
    return f"/api/v1/model-versions/{version_id}/thresholds/"


@pytest.fixture
def version() -> ModelVersion:
    return ModelVersionFactory(metrics={"thresholds": {"split": "val", "images": 9, "curves": CURVES,
                                                       "defaults": {"crazing": 0.6, "inclusion": 0.6}}})


@pytest.mark.parametrize("caller", [None, "viewer", "integrator", "qa", "ml_admin", "superuser"])
def test_roles(caller, version):
    client = client_for(caller)
    read = client.get(_url(version.pk))
    write = client.put(_url(version.pk), {"thresholds": {"crazing": 0.8}}, format="json")
    patch = client.patch(_url(version.pk), {"thresholds": {"inclusion": 0.3}}, format="json")
    if caller is None:
        assert {read.status_code, write.status_code, patch.status_code} == {401}
    elif caller in {"ml_admin", "superuser"}:
        assert read.status_code == write.status_code == patch.status_code == 200
    else:
        assert read.status_code == 200
        assert_error(write, 403, "permission_denied")
        assert_error(patch, 403, "permission_denied")
        assert not DecisionThresholdChange.objects.exists()


def test_read_gives_threshold_default_and_curve_per_class(version):
    body = client_for("viewer").get(_url(version.pk)).json()
    assert body["curve_source"] == "training" and body["curve_images"] == 9
    by_name = {row["name"]: row for row in body["classes"]}
    assert set(by_name) == {"crazing", "inclusion"}
    assert by_name["crazing"] == {"name": "crazing", "threshold": 0.6, "default": 0.6, "curve": CURVES["crazing"]}
    assert by_name["inclusion"]["curve"] is None
    assert body["history"] == [] and body["revision"] == 0


def test_change_is_stored_audited_and_shown_in_history(version):
    client = client_for("ml_admin")
    response = client.put(_url(version.pk), {"thresholds": {"crazing": 0.9}, "note": "cracks cost more"}, format="json")
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    version.refresh_from_db()
    assert version.decision_thresholds == {"crazing": 0.9} and version.thresholds_revision == 1
    change = DecisionThresholdChange.objects.get()
    assert (change.class_name, change.old_threshold, change.new_threshold, change.note, change.changed_by) == (
        "crazing", 0.6, 0.9, "cracks cost more", client.user)
    body = response.json()
    assert {row["name"]: row["threshold"] for row in body["classes"]} == {"crazing": 0.9, "inclusion": 0.6}
    assert body["history"][0]["old"] == 0.6 and body["history"][0]["new"] == 0.9
    assert body["history"][0]["changed_by"] == client.user.username

    # The same value again changes nothing and writes no row; PATCH touches only what it names.
    client.patch(_url(version.pk), {"thresholds": {"crazing": 0.9, "inclusion": 0.4}}, format="json")
    assert list(DecisionThresholdChange.objects.order_by("id").values_list("class_name", "old_threshold",
                                                                         "new_threshold")) == [
        ("crazing", 0.6, 0.9), ("inclusion", 0.6, 0.4)]
    version.refresh_from_db()
    assert version.decision_thresholds == {"crazing": 0.9, "inclusion": 0.4} and version.thresholds_revision == 2


def test_unknown_version_is_404():
    assert_error(client_for("ml_admin").get(_url(987654)), 404)
    assert_error(client_for("ml_admin").put(_url(987654), {"thresholds": {"crazing": 0.5}}, format="json"), 404)


@pytest.mark.parametrize("body, code", [
    ({"thresholds": {"scratches": 0.9}}, "invalid_thresholds"),        # a class not in the version
    ({"thresholds": {"crazing": 1.5}}, "invalid_thresholds"),
    ({"thresholds": {"crazing": -0.1}}, "invalid_thresholds"),
    ({"thresholds": {"crazing": 0}}, "invalid_thresholds"),            # below the minimum 0.01
    ({"thresholds": {"crazing": 0.0099}}, "invalid_thresholds"),
    ({"thresholds": {"crazing": 5e-324}}, "invalid_thresholds"),       # a denormal
    ({"thresholds": {"crazing": "0.5"}}, "invalid_thresholds"),        # not a number
    ({"thresholds": {"crazing": True}}, "invalid_thresholds"),
    ({"thresholds": {"crazing": None}}, "invalid_thresholds"),
    ({"thresholds": {}}, "invalid_thresholds"),                         # empty
    ({"thresholds": [0.5]}, "invalid_thresholds"),
    ({}, "invalid_thresholds"),
    ({"thresholds": {"crazing": 0.7, "inclusion": 2}}, "invalid_thresholds"),  # all or nothing
    ({"thresholds": {"crazing": 0.7}, "note": "x" * 501}, "invalid_note"),
])
def test_bad_input_is_400_and_changes_nothing(version, body, code):
    response = client_for("ml_admin").put(_url(version.pk), body, format="json")
    assert_error(response, 400, code)
    version.refresh_from_db()
    assert version.decision_thresholds == {} and version.thresholds_revision == 0
    assert not DecisionThresholdChange.objects.exists()


@pytest.mark.parametrize("raw", ['{"thresholds": {"crazing": NaN}}', '{"thresholds": {"crazing": Infinity}}',
                                 '{"thresholds": {"crazing": 1e400}}', "not json"])
def test_nan_infinite_and_broken_json_are_400(version, raw):
    response = client_for("ml_admin").generic("PUT", _url(version.pk), raw, content_type="application/json")
    assert_error(response, 400)
    assert not DecisionThresholdChange.objects.exists()


def test_if_match_refuses_a_stale_revision(version):
    client = client_for("ml_admin")
    assert client.put(_url(version.pk), {"thresholds": {"crazing": 0.7}}, format="json", HTTP_IF_MATCH='"0"').status_code == 200
    stale = client.put(_url(version.pk), {"thresholds": {"crazing": 0.2}}, format="json", HTTP_IF_MATCH='"0"')
    assert_error(stale, 412, "thresholds_changed")
    assert_error(client.put(_url(version.pk), {"thresholds": {"crazing": 0.2}}, format="json", HTTP_IF_MATCH="abc"),
                 400, "invalid_if_match")
    version.refresh_from_db()
    assert version.decision_thresholds == {"crazing": 0.7}


def test_old_version_without_curve_gets_one_from_its_validation_predictions():
    old = ModelVersionFactory()
    assert client_for("viewer").get(_url(old.pk)).json()["curve_source"] is None
    crazing, inclusion = DefectClass.objects.get(name="crazing"), DefectClass.objects.get(name="inclusion")
    for label, probabilities in ((crazing, {"crazing": 0.9, "inclusion": 0.1}),
                                 (inclusion, {"crazing": 0.7, "inclusion": 0.3})):
        image = InspectionImageFactory(label=label, label_source="import", split="val")
        PredictionFactory(image=image, model_version=old, probabilities=probabilities)
    body = client_for("viewer").get(_url(old.pk)).json()
    assert body["curve_source"] == "predictions" and body["curve_images"] == 2
    curve = {row["name"]: row["curve"] for row in body["classes"]}["crazing"]
    assert curve["predicted"] == 2
    assert curve["precision"][curve["thresholds"].index(0.0)] == 0.5
    assert curve["precision"][curve["thresholds"].index(0.8)] == 1.0


@pytest.mark.parametrize("raw", ['{"thresholds": {"crazing": 1e-400}}', '{"thresholds": {"crazing": 5e-324}}',
                                 '{"thresholds": {"crazing": -0.0}}'])
def test_values_that_parse_to_zero_or_a_denormal_are_refused(version, raw):
    response = client_for("ml_admin").generic("PUT", _url(version.pk), raw, content_type="application/json")
    assert "crazing" in assert_error(response, 400, "invalid_thresholds")["details"]
    version.refresh_from_db()
    assert version.decision_thresholds == {} and not DecisionThresholdChange.objects.exists()


@pytest.mark.parametrize("value", [0.01, 1.0, 1])
def test_the_limits_themselves_are_accepted(version, value):
    response = client_for("ml_admin").put(_url(version.pk), {"thresholds": {"crazing": value}}, format="json")
    assert response.status_code == 200, response.content[:300]
    version.refresh_from_db()
    assert version.decision_thresholds == {"crazing": float(value)}
