"""The Models pages and a version the gate refused: Promote asks why in a confirmation step, the
override is shown afterwards, and classes the gate could not measure never read as 0.0%."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from inspections.models import ModelVersionStatus
from inspections.registry.services.model_versions import model_version_promote
from mlcore.gate import decide
from tests.factories import ModelVersionFactory, UserFactory
from tests.inspections.registry.gate_decisions import refused_gate_decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def refused(no_queue):
    active = model_version_promote(version=ModelVersionFactory())
    return active, ModelVersionFactory(metrics={"accuracy": 0.7, "gate": refused_gate_decision()})


def _log_in(client, role, username=None):
    user = UserFactory(roles=[role], **({"username": username} if username else {}))
    client.force_login(user)
    return user


def test_the_list_offers_a_refused_version_only_through_the_confirmation_step(client, refused):
    active, candidate = refused
    _log_in(client, "ml_admin")
    page = client.get(reverse("registry:model-versions")).content.decode()
    confirm = reverse("registry:model-version-promote", args=[candidate.pk])
    assert f'href="{confirm}"' in page  # a link (GET): the confirmation page
    row = re.search(rf'<tr data-version="{candidate.number}".*?</tr>', page, re.S)[0]
    assert 'method="post"' not in row


def test_the_confirmation_step_shows_the_gates_reasons_and_asks_why(client, refused):
    _, candidate = refused
    _log_in(client, "ml_admin")
    page = client.get(reverse("registry:model-version-promote", args=[candidate.pk])).content.decode()
    for reason in candidate.metrics["gate"]["reasons"]:
        assert escape(reason) in page
    assert re.search(r'<textarea name="override_reason"[^>]* required', page)


@pytest.mark.parametrize("reason", [None, "   "])
def test_promoting_without_a_reason_asks_again_and_changes_nothing(client, refused, reason):
    active, candidate = refused
    _log_in(client, "ml_admin")
    data = {} if reason is None else {"override_reason": reason}
    response = client.post(reverse("registry:model-version-promote", args=[candidate.pk]), data)
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    candidate.refresh_from_db()
    assert candidate.status == ModelVersionStatus.CANDIDATE
    active.refresh_from_db()
    assert active.status == ModelVersionStatus.ACTIVE


def test_promoting_with_a_reason_records_it_and_both_pages_show_it(client, refused):
    _, candidate = refused
    _log_in(client, "ml_admin", "alice")
    response = client.post(reverse("registry:model-version-promote", args=[candidate.pk]),
                           {"override_reason": "crazing labels in the test split were wrong"})
    assert response["Location"] == reverse("registry:model-version", args=[candidate.pk])
    candidate.refresh_from_db()
    assert candidate.status == ModelVersionStatus.ACTIVE
    page = client.get(response["Location"]).content.decode()
    when = f"{candidate.promotion_override_at:%Y-%m-%d %H:%M}"
    assert re.search(rf"Promoted over the gate's refusal by alice on {when}: <q>crazing labels in the test "
                     "split were wrong</q>", page)
    assert f"promoted over it by alice {when}" in client.get(reverse("registry:model-versions")).content.decode()


def test_a_version_the_gate_passed_still_promotes_in_one_click(client, no_queue):
    candidate = ModelVersionFactory()
    _log_in(client, "ml_admin")
    response = client.post(reverse("registry:model-version-promote", args=[candidate.pk]))
    assert response["Location"] == reverse("registry:model-versions")
    candidate.refresh_from_db()
    assert candidate.status == ModelVersionStatus.ACTIVE and candidate.promotion_override_at is None


@pytest.mark.parametrize("role", ["viewer", "qa"])
def test_other_roles_cannot_open_or_use_the_confirmation_step(client, refused, role):
    _, candidate = refused
    _log_in(client, role)
    url = reverse("registry:model-version-promote", args=[candidate.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"override_reason": "because"}).status_code == 403
    candidate.refresh_from_db()
    assert candidate.status == ModelVersionStatus.CANDIDATE


def test_a_class_the_gate_could_not_measure_reads_not_measured_never_zero(client, refused):
    _, candidate = refused
    candidate.metrics = {**candidate.metrics, "per_class": {
        "crazing": {"precision": 0.9, "recall": 0.4, "f1": 0.55, "support": 10},
        "no_defect": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "patches": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }}
    candidate.save()
    _log_in(client, "viewer")
    page = client.get(reverse("registry:model-version", args=[candidate.pk])).content.decode()
    new_classes = re.search(r'<p id="gate-new-classes">(.*?)</p>', page, re.S)[1]
    assert "no_defect not measured (1 test image)" in new_classes and "0.0%" not in new_classes
    gate_table = re.search(r'<table class="grid" id="gate-classes">(.*?)</table>', page, re.S)[1]
    gate_row = re.search(r'<tr data-class="no_defect">(.*?)</tr>', gate_table, re.S)[1]
    assert "not measured (1 test image)" in gate_row and "%" not in gate_row
    per_class = page[page.index("Per class (test split)"):]
    for name, shown in (("no_defect", "not measured (1 test image)"), ("patches", "not measured (0 test images)")):
        row = re.search(rf'<tr data-class="{name}">(.*?)</tr>', per_class, re.S)[1]
        assert shown in row and "0.0%" not in row
    assert "40.0%" in re.search(r'<tr data-class="crazing">(.*?)</tr>', per_class, re.S)[1]


def test_a_measured_new_class_keeps_its_recall(client, no_queue):
    labels = ["crazing"] * 5 + ["edge_crack"] * 6
    gate = decide(labels=labels, candidate_predictions=labels[:-1] + ["crazing"],
                  candidate_classes=["crazing", "edge_crack"], champion_predictions=labels,
                  champion_classes=["crazing"]).to_dict()
    version = ModelVersionFactory(classes=["crazing", "edge_crack"], metrics={"gate": {**gate, "promoted": True}})
    _log_in(client, "viewer")
    page = client.get(reverse("registry:model-version", args=[version.pk])).content.decode()
    assert "<p id=\"gate-new-classes\">New classes' recall: edge_crack 83.3%</p>" in page
