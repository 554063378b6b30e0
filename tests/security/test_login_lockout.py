"""Password guessing is limited (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one
user from one address, even the right password is refused until the cool-off ends or an ML admin
or superuser unlocks it. Real PostgreSQL; the browser side is tests/e2e/test_login_lockout.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _fail(client, username: str, times: int, address: str = "127.0.0.1"):
    response = None
    for _ in range(times):
        response = client.post(LOGIN, {"username": username, "password": "wrong"}, REMOTE_ADDR=address)
    return response


def _right_password(client, username: str, address: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": "pw"}, REMOTE_ADDR=address)


def test_the_limit_and_cool_off_come_from_settings():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_failures_below_the_limit_leave_the_right_password_working(client):
    user = UserFactory(roles=["qa"])
    assert _fail(client, user.username, settings.AXES_FAILURE_LIMIT - 1).status_code == 200
    response = _right_password(client, user.username)
    assert response.status_code == 302 and response["Location"] == "/"


def test_after_the_limit_the_right_password_is_refused_with_a_page_naming_the_retry_time(client):
    user = UserFactory(roles=["qa"])
    locking = _fail(client, user.username, settings.AXES_FAILURE_LIMIT)
    assert locking.status_code == 429
    response = _right_password(client, user.username)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Login locked" in body and user.username in body and "Try again after" in body
    assert client.get("/review/").status_code == 302  # still logged out


def test_the_lockout_is_per_user_and_address(client):
    user, other = UserFactory(roles=["qa"]), UserFactory(roles=["qa"])
    _fail(client, user.username, settings.AXES_FAILURE_LIMIT, address="10.0.0.5")
    # The same user from another terminal, and another user from the same terminal, get in.
    assert _right_password(client, user.username, address="10.0.0.6").status_code == 302
    client.logout()
    assert _right_password(client, other.username, address="10.0.0.5").status_code == 302


def test_the_admin_login_is_locked_too(client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    admin.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": admin.username, "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": admin.username, "password": "pw"})
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_the_lock_lifts_after_the_cool_off(client):
    from axes.models import AccessAttempt

    user = UserFactory(roles=["qa"])
    _fail(client, user.username, settings.AXES_FAILURE_LIMIT)
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert _right_password(client, user.username).status_code == 302


def test_an_ml_admin_unlocks_from_the_locked_logins_page(client):
    user = UserFactory(roles=["qa"])
    _fail(client, user.username, settings.AXES_FAILURE_LIMIT, address="10.0.0.7")
    ml_admin = UserFactory(roles=["ml_admin"])
    client.force_login(ml_admin)
    listing = client.get("/accounts/lockouts/")
    assert listing.status_code == 200
    assert user.username in listing.content.decode() and "10.0.0.7" in listing.content.decode()
    response = client.post("/accounts/lockouts/unlock/", {"username": user.username, "ip_address": "10.0.0.7"})
    assert response.status_code == 302 and response["Location"] == "/accounts/lockouts/"
    after = client.get("/accounts/lockouts/").content.decode()
    assert f"Unlocked: {user.username} may log in again from 10.0.0.7." in after
    assert "No login is locked." in after
    client.logout()
    assert _right_password(client, user.username, address="10.0.0.7").status_code == 302


@pytest.mark.parametrize("role", ["qa", "viewer", "integrator"])
def test_other_roles_cannot_unlock(client, role):
    user = UserFactory(roles=["qa"])
    _fail(client, user.username, settings.AXES_FAILURE_LIMIT, address="10.0.0.8")
    client.force_login(UserFactory(roles=[role]))
    assert client.post("/accounts/lockouts/unlock/", {"username": user.username, "ip_address": "10.0.0.8"}).status_code == 403
    client.logout()
    assert _right_password(client, user.username, address="10.0.0.8").status_code == 429


def test_the_library_reset_command_unlocks(client):
    user = UserFactory(roles=["qa"])
    _fail(client, user.username, settings.AXES_FAILURE_LIMIT)
    call_command("axes_reset_username", user.username)
    assert _right_password(client, user.username).status_code == 302


def test_behind_a_trusted_proxy_the_address_is_read_from_the_right(client, settings):
    settings.STEELQC_TRUSTED_PROXY_COUNT = 1
    user = UserFactory(roles=["qa"])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        # The client writes the left part of X-Forwarded-For; a fresh value each time must not help.
        client.post(LOGIN, {"username": user.username, "password": "wrong"},
                    HTTP_X_FORWARDED_FOR=f"1.2.3.{_}, 192.0.2.10", REMOTE_ADDR="10.0.0.1")
    response = client.post(LOGIN, {"username": user.username, "password": "pw"},
                           HTTP_X_FORWARDED_FOR="9.9.9.9, 192.0.2.10", REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    from axes.models import AccessAttempt

    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["192.0.2.10"]
