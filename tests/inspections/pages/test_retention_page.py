"""The retention page: ml_admin lists, sets and removes policies; others are refused; bad
values are refused without a change; the last hour's counts per source are shown."""

from __future__ import annotations

import pytest
from django.utils import timezone

from inspections.line.services.stats import Seen, line_minute_record
from inspections.models import RetentionPolicy

pytestmark = pytest.mark.django_db


def test_ml_admin_sets_changes_and_removes_a_policy(client, role_user):
    admin = role_user("ml_admin")
    client.force_login(admin)
    response = client.post("/retention/", {"source": "strip-2", "sample_rate": "0.05", "max_per_minute": "10",
                                           "max_per_day": "200"})
    assert response.status_code == 302
    policy = RetentionPolicy.objects.get(source="strip-2")
    assert (policy.sample_rate, policy.max_per_minute, policy.max_per_day, policy.updated_by) == (0.05, 10, 200, admin)
    client.post("/retention/", {"source": "strip-2", "sample_rate": "0.5", "max_per_minute": "1", "max_per_day": "2"})
    assert RetentionPolicy.objects.get(source="strip-2").sample_rate == 0.5
    html = client.get("/retention/").content.decode()
    assert 'data-source="strip-2"' in html and "always kept" in html
    assert "<script" not in html.split("<main", 1)[-1].split("</main>", 1)[0] and "style=" not in html
    assert client.post("/retention/remove/", {"source": "strip-2"}).status_code == 302
    assert not RetentionPolicy.objects.exists()


@pytest.mark.parametrize("rate", ["2", "-1", "lots"])
def test_bad_values_are_refused_and_nothing_changes(client, role_user, rate):
    client.force_login(role_user("ml_admin"))
    response = client.post("/retention/", {"source": "", "sample_rate": rate, "max_per_minute": "1",
                                           "max_per_day": "1"})
    assert response.status_code == 400
    assert "sample_rate" in response.content.decode()
    assert not RetentionPolicy.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "qa", "integrator"])
def test_other_roles_are_refused(client, role_user, role):
    client.force_login(role_user(role))
    assert client.get("/retention/").status_code == 403
    assert client.post("/retention/", {"source": "x", "sample_rate": "1", "max_per_minute": "1",
                                       "max_per_day": "1"}).status_code == 403
    assert not RetentionPolicy.objects.exists()


def test_anonymous_is_sent_to_the_login(client):
    assert client.get("/retention/").status_code == 302


def test_the_last_hour_per_source_is_shown(client, role_user):
    line_minute_record(source="strip-9", model_version_id=None, now=timezone.now(), rows=[
        Seen(label="crazing", confidence=0.9, review_reasons=(), kept=False, latency_ms=1.0),
        Seen(label="crazing", confidence=0.3, review_reasons=("low_confidence",), kept=True, latency_ms=1.0)])
    client.force_login(role_user("ml_admin"))
    html = client.get("/retention/").content.decode()
    assert "<td>strip-9</td><td>2</td><td>1</td><td>1</td>" in html
