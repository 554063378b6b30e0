"""Promoting a version the gate refused, in Chromium: Promote leads to a confirmation step that shows
the gate's reasons and asks why; the reason, who and when are shown on the version page after."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_an_ml_admin_promotes_a_refused_version_only_by_saying_why(page, users, no_queue):
    from inspections.models import ModelVersion
    from inspections.registry.services.model_versions import model_version_promote
    from tests.factories import ModelVersionFactory
    from tests.inspections.registry.gate_decisions import refused_gate_decision

    active = model_version_promote(version=ModelVersionFactory())
    refused = ModelVersionFactory(metrics={"accuracy": 0.7, "gate": refused_gate_decision(
        champion_version=active.number)})
    users("ml_admin", "ml-olga")
    log_in(page, "ml-olga")

    page.goto(f"/models/{refused.pk}/")
    assert "not measured (1 test image)" in page.locator("#gate-new-classes").inner_text()
    page.click("#promote")
    page.wait_for_url(f"**/models/{refused.pk}/promote/")
    reasons = page.locator("#gate-reasons").inner_text()
    assert "below the floor 0.5" in reasons and "recall of crazing 0.4000 vs 1.0000" in reasons
    screenshot(page, "promote-over-the-gate.png", full_page=True)

    page.click("#confirm-promote")  # no reason yet: the browser asks for it, nothing is sent
    assert page.locator("#id_override_reason").evaluate("field => field.validity.valueMissing")
    assert ModelVersion.objects.get(pk=refused.pk).status == "candidate"

    page.fill("#id_override_reason", "the crazing test images were mislabelled; rechecked by hand")
    page.click("#confirm-promote")
    page.wait_for_url(f"**/models/{refused.pk}/")
    override = page.locator("#gate-override").inner_text()
    assert override.startswith("Promoted over the gate's refusal by ml-olga on ")
    assert override.endswith("the crazing test images were mislabelled; rechecked by hand")
    assert "is now the active version, promoted over the gate's refusal" in page.locator(".messages").inner_text()
    screenshot(page, "promoted-over-the-gate.png", full_page=True)

    refused.refresh_from_db()
    assert (refused.status, refused.promotion_override_by.username) == ("active", "ml-olga")
    assert refused.promotion_override_reason == "the crazing test images were mislabelled; rechecked by hand"
    page.goto("/models/")
    assert "promoted over it by ml-olga" in page.locator(f'tr[data-version="{refused.number}"]').inner_text()
