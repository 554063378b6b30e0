"""The retention page's sweep part: keep days per policy, what the next run would delete, and
the last runs (dry runs too)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inspections.line.services.retention_sweep import retention_sweep
from inspections.models import ImageStatus, InspectionImage, RetentionPolicy
from tests.factories import InspectionImageFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def _form(**values) -> dict:
    return {"source": "strip-4", "sample_rate": "0.01", "max_per_minute": "60", "max_per_day": "5000", **values}


def test_keep_days_is_set_cleared_and_left_alone_when_not_sent(client, role_user, settings):
    settings.STEELQC_RETENTION_KEEP_DAYS = 45
    client.force_login(role_user("ml_admin"))
    assert 'name="keep_days" value="45"' in client.get("/retention/").content.decode()  # the settings default
    assert client.post("/retention/", _form(keep_days="14")).status_code == 302
    assert RetentionPolicy.objects.get(source="strip-4").keep_days == 14
    assert client.post("/retention/", _form(sample_rate="0.2")).status_code == 302  # an older form: no keep_days
    assert RetentionPolicy.objects.get(source="strip-4").keep_days == 14
    assert client.post("/retention/", _form(keep_days="")).status_code == 302
    assert RetentionPolicy.objects.get(source="strip-4").keep_days is None
    assert "<td>forever</td>" in client.get("/retention/").content.decode()


@pytest.mark.parametrize("days", ["0", "-1", "a week", "99999"])
def test_bad_keep_days_are_refused_and_nothing_changes(client, role_user, days):
    client.force_login(role_user("ml_admin"))
    response = client.post("/retention/", _form(keep_days=days))
    assert response.status_code == 400
    assert "keep_days" in response.content.decode()
    assert not RetentionPolicy.objects.exists()


def test_the_next_run_and_the_last_runs_are_shown(client, role_user, settings):
    settings.STEELQC_RETENTION_KEEP_DAYS = 30
    for _ in range(2):
        image = InspectionImageFactory(source="strip-5", status=ImageStatus.PREDICTED)
        PredictionFactory(image=image)
        InspectionImage.objects.filter(pk=image.pk).update(created_at=timezone.now() - timedelta(days=31))
    client.force_login(role_user("ml_admin"))
    html = client.get("/retention/").content.decode()
    assert "The next run would delete 2 images" in html
    assert "<td>strip-5</td><td>30</td><td>2</td>" in html
    assert "No retention run yet." in html
    run = retention_sweep(dry_run=True)
    html = client.get("/retention/").content.decode()
    assert f'data-run="{run.pk}"' in html and "dry run" in html
    assert InspectionImage.objects.count() == 2


def test_nothing_due_says_so(client, role_user):
    client.force_login(role_user("ml_admin"))
    assert "The next run would delete nothing." in client.get("/retention/").content.decode()
