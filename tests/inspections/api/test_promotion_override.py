"""POST model-versions/{id}/promote/ on a version the gate refused: 409 gate_refused with the gate's
reasons unless the body says why (override_reason), which is then stored and returned."""

from __future__ import annotations

import pytest

from inspections.models import ModelVersion
from inspections.registry.models import OVERRIDE_REASON_MAX_LENGTH
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import ModelVersionFactory
from tests.inspections.api.conftest import assert_error, client_for
from tests.inspections.registry.gate_decisions import passed_gate_decision, refused_gate_decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def refused(no_queue):
    """v_active in service and a candidate the gate refused."""
    active = model_version_promote(version=ModelVersionFactory())
    candidate = ModelVersionFactory(metrics={"accuracy": 0.7, "gate": refused_gate_decision()})
    return active, candidate


def _states(*versions):
    return [ModelVersion.objects.get(pk=version.pk).status for version in versions]


def test_a_refused_version_without_a_reason_is_409_with_the_gates_reasons_and_nothing_changes(refused):
    active, candidate = refused
    error = assert_error(client_for("ml_admin").post(f"/api/v1/model-versions/{candidate.pk}/promote/", {},
                                                     format="json"), 409, "gate_refused")
    assert error["details"]["reasons"] == candidate.metrics["gate"]["reasons"]
    assert any("below the floor" in reason for reason in error["details"]["reasons"])
    assert "override_reason" in error["message"]
    assert _states(active, candidate) == ["active", "candidate"]
    candidate.refresh_from_db()
    assert (candidate.promoted_at, candidate.promotion_override_reason, candidate.promotion_override_at) == (
        None, "", None)


def test_a_reason_promotes_it_and_the_reason_who_and_when_are_returned(refused):
    active, candidate = refused
    admin = client_for("ml_admin")
    response = admin.post(f"/api/v1/model-versions/{candidate.pk}/promote/",
                          {"override_reason": "  crazing test images were mislabelled; checked by hand  "},
                          format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "active"
    assert body["promotion_override_reason"] == "crazing test images were mislabelled; checked by hand"
    assert body["promotion_override_by"] == admin.user.username == body["promoted_by"]
    assert body["promotion_override_at"] == body["promoted_at"]
    assert _states(active, candidate) == ["retired", "active"]
    detail = client_for("viewer").get(f"/api/v1/model-versions/{candidate.pk}/").json()
    assert detail["promotion_override_reason"] == "crazing test images were mislabelled; checked by hand"
    assert detail["promotion_override_by"] == admin.user.username


@pytest.mark.parametrize("reason", ["", "   \n\t "])
def test_a_blank_reason_is_400_and_nothing_changes(refused, reason):
    active, candidate = refused
    error = assert_error(client_for("ml_admin").post(f"/api/v1/model-versions/{candidate.pk}/promote/",
                                                     {"override_reason": reason}, format="json"), 400, "invalid")
    assert "override_reason" in error["details"]
    assert _states(active, candidate) == ["active", "candidate"]


def test_a_reason_longer_than_the_limit_is_400(refused):
    active, candidate = refused
    response = client_for("ml_admin").post(f"/api/v1/model-versions/{candidate.pk}/promote/",
                                           {"override_reason": "x" * (OVERRIDE_REASON_MAX_LENGTH + 1)}, format="json")
    assert "override_reason" in assert_error(response, 400, "invalid")["details"]
    assert _states(active, candidate) == ["active", "candidate"]


@pytest.mark.parametrize("role", ["viewer", "qa", "integrator"])
def test_only_ml_admins_may_override(refused, role):
    active, candidate = refused
    response = client_for(role).post(f"/api/v1/model-versions/{candidate.pk}/promote/",
                                     {"override_reason": "I say so"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert _states(active, candidate) == ["active", "candidate"]


@pytest.mark.parametrize("gate", [None, passed_gate_decision()], ids=["no gate decision", "passed"])
def test_a_version_the_gate_did_not_refuse_promotes_as_before_and_records_no_override(no_queue, gate):
    model_version_promote(version=ModelVersionFactory())
    candidate = ModelVersionFactory(metrics={"gate": gate} if gate else {})
    admin = client_for("ml_admin")
    body = admin.post(f"/api/v1/model-versions/{candidate.pk}/promote/", {"override_reason": "not needed"},
                      format="json").json()
    assert body["status"] == "active"
    assert (body["promotion_override_reason"], body["promotion_override_by"], body["promotion_override_at"]) == (
        None, None, None)


def test_rollback_to_a_version_the_gate_refused_needs_no_reason(refused):
    active, candidate = refused
    admin = client_for("ml_admin")
    admin.post(f"/api/v1/model-versions/{candidate.pk}/promote/", {"override_reason": "urgent fix"}, format="json")
    model_version_promote(version=ModelVersionFactory())  # a third version replaces it
    assert admin.post("/api/v1/model-versions/rollback/").json()["id"] == candidate.pk
    candidate.refresh_from_db()
    assert candidate.status == "active" and candidate.promotion_override_reason == "urgent fix"
