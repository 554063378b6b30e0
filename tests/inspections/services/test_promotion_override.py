"""model_version_promote and the gate's refusal: a Conflict with the reasons, or a recorded override."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from inspections.errors import ApplicationError, Conflict
from inspections.models import ModelVersion, ModelVersionStatus
from inspections.registry.services.model_versions import gate_refusal_reasons, model_version_promote
from tests.factories import ModelVersionFactory, UserFactory
from tests.inspections.registry.gate_decisions import passed_gate_decision, refused_gate_decision

pytestmark = pytest.mark.django_db


def test_refused_without_a_reason_raises_gate_refused_and_queues_nothing(no_queue):
    active = model_version_promote(version=ModelVersionFactory())
    no_queue.clear()
    candidate = ModelVersionFactory(metrics={"gate": refused_gate_decision()})
    with pytest.raises(Conflict) as refused:
        model_version_promote(version=candidate, actor=UserFactory())
    assert refused.value.code == "gate_refused"
    assert refused.value.details == {"reasons": candidate.metrics["gate"]["reasons"]}
    assert ModelVersion.objects.get(status=ModelVersionStatus.ACTIVE) == active
    assert no_queue == []


def test_an_override_records_reason_actor_and_time_with_the_promotion(no_queue):
    model_version_promote(version=ModelVersionFactory())
    candidate = ModelVersionFactory(metrics={"gate": refused_gate_decision()})
    alice = UserFactory(username="alice")
    promoted = model_version_promote(version=candidate, actor=alice, override_reason=" line 3 needs it today ")
    promoted.refresh_from_db()
    assert promoted.status == ModelVersionStatus.ACTIVE
    assert (promoted.promotion_override_reason, promoted.promotion_override_by) == ("line 3 needs it today", alice)
    assert promoted.promotion_override_at == promoted.promoted_at is not None


def test_a_blank_reason_is_refused_before_anything_changes(no_queue):
    candidate = ModelVersionFactory(metrics={"gate": refused_gate_decision()})
    with pytest.raises(ApplicationError) as refused:
        model_version_promote(version=candidate, override_reason="  ")
    assert refused.value.code == "invalid_override_reason" and not isinstance(refused.value, Conflict)
    assert ModelVersion.objects.get(pk=candidate.pk).status == ModelVersionStatus.CANDIDATE


def test_a_passed_version_ignores_a_reason(no_queue):
    candidate = ModelVersionFactory(metrics={"gate": passed_gate_decision()})
    promoted = model_version_promote(version=candidate, override_reason="just in case")
    promoted.refresh_from_db()
    assert promoted.status == ModelVersionStatus.ACTIVE
    assert (promoted.promotion_override_reason, promoted.promotion_override_at) == ("", None)


@pytest.mark.parametrize(("gate", "expected"), [
    (None, None),
    ({"passed": True, "reasons": ["fine"]}, None),
    ({"passed": False, "promoted": False, "reasons": ["worse"]}, ["worse"]),
    ({"promoted": False, "reasons": ["older decision without passed"]}, ["older decision without passed"]),
])
def test_gate_refusal_reasons_read_the_stored_decision(gate, expected):
    version = ModelVersionFactory.build(metrics={"gate": gate} if gate is not None else {})
    assert gate_refusal_reasons(version) == expected


def test_the_database_refuses_half_an_override():
    with pytest.raises(IntegrityError):
        ModelVersionFactory(promotion_override_reason="a reason without a time")
