"""Who promoted, rolled back or cancelled is recorded, and shown in the API and on the pages."""

import pytest
from django.urls import reverse

from inspections.models import ModelVersionStatus, Retirement, TrainingRun, TrainingRunStatus
from inspections.registry.services.model_versions import model_version_promote, model_version_rollback
from inspections.registry.services.training import training_run_cancel
from tests.factories import ModelVersionFactory, UserFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_promotions(no_queue):
    """v_first promoted by alice, then v_second promoted by bob (retiring v_first)."""
    alice, bob = UserFactory(username="alice", roles=["ml_admin"]), UserFactory(username="bob", roles=["ml_admin"])
    first, second = ModelVersionFactory(), ModelVersionFactory()
    model_version_promote(version=first, actor=alice)
    model_version_promote(version=second, actor=bob)
    first.refresh_from_db()
    second.refresh_from_db()
    return first, second, alice, bob


def test_promotion_records_who_promoted_and_who_retired_the_previous_version(two_promotions):
    first, second, alice, bob = two_promotions
    assert (second.status, second.promoted_by, second.retired_by) == (ModelVersionStatus.ACTIVE, bob, None)
    assert (first.status, first.promoted_by, first.retired_by) == (ModelVersionStatus.RETIRED, alice, bob)
    assert first.retirement == Retirement.REPLACED and first.retired_at == second.promoted_at


def test_rollback_records_who_rolled_back(two_promotions):
    first, second, alice, _ = two_promotions
    carol = UserFactory(username="carol", roles=["ml_admin"])
    model_version_rollback(actor=carol)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.promoted_by) == (ModelVersionStatus.ACTIVE, carol)
    assert (first.retired_by, first.retired_at, first.retirement) == (None, None, Retirement.NONE)
    assert (second.status, second.retired_by, second.retirement) == (ModelVersionStatus.RETIRED, carol,
                                                                        Retirement.ROLLED_BACK)


def test_an_anonymous_or_system_actor_is_recorded_as_nobody(no_queue):
    version = ModelVersionFactory()
    model_version_promote(version=version, actor=None)
    version.refresh_from_db()
    assert version.promoted_at is not None and version.promoted_by is None


def test_cancel_records_who_and_when():
    dora = UserFactory(username="dora", roles=["ml_admin"])
    run = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING)
    training_run_cancel(run=run, actor=dora)
    run.refresh_from_db()
    assert (run.cancel_requested, run.cancelled_by, run.status) == (True, dora, TrainingRunStatus.RUNNING)
    assert run.cancelled_at is not None and run.finished_at is None


def test_the_api_shows_the_actors_as_usernames(two_promotions):
    first, second, _, _ = two_promotions
    viewer = client_for("viewer")
    body = viewer.get(f"/api/v1/model-versions/{first.pk}/").json()
    assert (body["promoted_by"], body["retired_by"], body["retirement"]) == ("alice", "bob", "replaced")
    assert body["retired_at"] is not None
    assert viewer.get(f"/api/v1/model-versions/{second.pk}/").json()["promoted_by"] == "bob"
    admin = client_for("ml_admin")
    run = TrainingRun.objects.create(status=TrainingRunStatus.QUEUED)
    assert admin.post(f"/api/v1/training-runs/{run.pk}/cancel/").json()["cancelled_by"] == admin.user.username
    listed = viewer.get("/api/v1/training-runs/").json()["results"][0]
    assert (listed["cancelled_by"], listed["status"]) == (admin.user.username, "cancelled")


def test_the_pages_show_who_promoted_retired_and_cancelled(client, two_promotions):
    first, _, _, _ = two_promotions
    client.force_login(UserFactory(roles=["viewer"]))
    detail = client.get(reverse("registry:model-version", args=[first.pk])).content.decode()
    assert "by alice" in detail and "Replaced" in detail and "by bob" in detail
    listing = client.get(reverse("registry:model-versions")).content.decode()
    assert "replaced" in listing and "by bob" in listing
    run = TrainingRun.objects.create(status=TrainingRunStatus.QUEUED)
    training_run_cancel(run=run, actor=UserFactory(username="erin", roles=["ml_admin"]))
    assert "by erin" in client.get(reverse("registry:training-run", args=[run.pk])).content.decode()
    assert "by erin" in client.get(reverse("registry:training-runs")).content.decode()
