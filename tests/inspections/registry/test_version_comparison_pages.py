"""/models/compare/?a=&b=: the comparison page, and the links to it from the registry."""

import pytest
from django.urls import reverse

from inspections.models import ModelVersionStatus
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import ModelVersionFactory, UserFactory
from tests.inspections.api.test_version_comparison_api import _run_queued, versions  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

URL = reverse("registry:model-version-compare")


def _login(client, role="viewer"):
    client.force_login(UserFactory(roles=[role]))


def test_page_says_computing_then_draws_both_versions_side_by_side(client, versions, no_queue,
                                                                  django_capture_on_commit_callbacks):
    first, second = versions
    _login(client)
    with django_capture_on_commit_callbacks(execute=True):  # the message goes at the request's commit
        page = client.get(URL, {"a": first.pk, "b": second.pk}).content.decode()
    assert 'data-status="computing"' in page and "computing…" in page and "js/compare.js" in page
    assert "4 of the frozen test split" in page and "16 labelled since" in page
    assert _run_queued(no_queue) == "ready"

    page = client.get(URL, {"a": first.pk, "b": second.pk}).content.decode()
    assert 'data-status="ready"' in page and 'id="per-class"' in page
    assert f"Δ ({second.name} − {first.name})" in page
    assert 'class="delta worse"' in page  # every name swapped: the second is worse
    assert page.count('class="grid matrix"') == 3
    assert "Where they disagree (20)" in page
    assert reverse("inspections:review-image", args=[second.training_run.snapshot.items.first().image_id]) in page


def test_compare_with_active_links_from_the_version_page_and_its_gate(client, no_queue):
    active, candidate = ModelVersionFactory(), ModelVersionFactory()
    model_version_promote(version=active)
    candidate.metrics = {"gate": {"promoted": False, "passed": False, "reasons": ["recall of crazing fell"],
                                  "champion": {"accuracy": 1.0}, "champion_version": active.number,
                                  "candidate": {"images": 4}, "new_class_recall": {}}}
    candidate.save()
    _login(client, "qa")
    page = client.get(reverse("registry:model-version", args=[candidate.pk])).content.decode()
    link = f"{URL}?b={candidate.pk}"
    assert f'id="compare-with-active" href="{link}"' in page and f'id="gate-compare" href="{link}"' in page
    assert 'id="compare-with-active"' not in client.get(reverse("registry:model-version", args=[active.pk])).content.decode()
    # Without `a` the active version is the first.
    page = client.get(link).content.decode()
    assert f"Compare {active.name} with {candidate.name}" in page


def test_bad_input_and_no_role(client, no_queue):
    first, second = ModelVersionFactory(), ModelVersionFactory()
    _login(client)
    assert client.get(URL).status_code == 200  # the chooser
    assert client.get(URL, {"a": first.pk, "b": 987654}).status_code == 404
    same = client.get(URL, {"a": first.pk, "b": first.pk})
    assert same.status_code == 400 and "Compare two different versions." in same.content.decode()
    assert client.get(URL, {"a": "x", "b": second.pk}).status_code == 400
    no_active = client.get(URL, {"b": second.pk})
    assert no_active.status_code == 400 and "No version is active" in no_active.content.decode()
    assert not ModelVersionFactory._meta.model.objects.filter(status=ModelVersionStatus.ACTIVE).exists()
    client.force_login(UserFactory())
    assert client.get(URL, {"a": first.pk, "b": second.pk}).status_code == 403
    assert no_queue == []
