"""The auth audit trail: each kind of event writes one row with user, address, request id and
time; rows can be neither changed nor deleted; only superusers read them in the admin."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import DatabaseError, transaction

from inspections.models import AuthEvent, AuthEventKind
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _events(kind) -> list[AuthEvent]:
    return list(AuthEvent.objects.filter(kind=kind).order_by("id"))


def test_a_login_records_user_address_request_id_and_time(client):
    user = UserFactory(roles=["qa"])
    response = client.post(LOGIN, {"username": user.username, "password": "pw"}, REMOTE_ADDR="10.1.2.3",
                           HTTP_X_REQUEST_ID="login-req-1")
    assert response.status_code == 302
    [event] = _events(AuthEventKind.LOGIN)
    assert (event.user, event.username, event.ip_address, event.request_id) == (user, user.username, "10.1.2.3", "login-req-1")
    assert event.created_at is not None


def test_a_failed_login_records_the_name_given_even_for_no_such_user(client):
    user = UserFactory(roles=["qa"])
    client.post(LOGIN, {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.1.2.4")
    client.post(LOGIN, {"username": "nobody-here", "password": "x"}, REMOTE_ADDR="10.1.2.4")
    first, second = _events(AuthEventKind.LOGIN_FAILED)
    assert (first.user, first.username, first.ip_address) == (user, user.username, "10.1.2.4")
    assert (second.user, second.username) == (None, "nobody-here")
    assert first.detail == "wrong user name or password"
    assert first.request_id and first.request_id != second.request_id


def test_reaching_the_limit_records_a_lockout_and_refusals_say_so(client):
    user = UserFactory(roles=["qa"])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.1.2.5")
    [lockout] = _events(AuthEventKind.LOCKOUT)
    assert (lockout.username, lockout.ip_address) == (user.username, "10.1.2.5")
    client.post(LOGIN, {"username": user.username, "password": "pw"}, REMOTE_ADDR="10.1.2.5")
    details = [e.detail for e in _events(AuthEventKind.LOGIN_FAILED)]
    assert details == ["wrong user name or password"] * (settings.AXES_FAILURE_LIMIT - 1) + [
        "wrong user name or password; the limit is reached", "refused while locked out"]
    assert len(_events(AuthEventKind.LOCKOUT)) == 1  # once per lockout, not once per refused try
    assert _events(AuthEventKind.LOGIN) == []


def test_an_unlock_records_who_unlocked(client):
    user = UserFactory(roles=["qa"])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.1.2.6")
    ml_admin = UserFactory(roles=["ml_admin"])
    client.force_login(ml_admin)
    client.post("/accounts/lockouts/unlock/", {"username": user.username, "ip_address": "10.1.2.6"})
    [unlock] = _events(AuthEventKind.UNLOCK)
    assert (unlock.username, unlock.actor, unlock.ip_address) == (user.username, ml_admin, "127.0.0.1")
    assert "10.1.2.6" in unlock.detail


def test_a_logout_is_recorded(client):
    user = UserFactory(roles=["qa"])
    client.force_login(user)
    client.post("/accounts/logout/")
    [event] = _events(AuthEventKind.LOGOUT)
    assert event.user == user


def test_the_token_command_records_creation_and_rotation():
    user = UserFactory(roles=["integrator"])
    call_command("create_api_token", user.username, stdout=io.StringIO(), stderr=io.StringIO())
    [created] = _events(AuthEventKind.TOKEN_CREATED)
    assert (created.user, created.actor) == (user, None)
    assert created.detail.endswith("on the command line") and "scope admin" in created.detail
    call_command("create_api_token", user.username, stdout=io.StringIO(), stderr=io.StringIO())  # a second token
    assert len(_events(AuthEventKind.TOKEN_CREATED)) == 2
    call_command("create_api_token", user.username, "--rotate", stdout=io.StringIO(), stderr=io.StringIO())
    assert [e.user for e in _events(AuthEventKind.TOKEN_REVOKED)] == [user, user]
    assert len(_events(AuthEventKind.TOKEN_CREATED)) == 3


def test_a_token_revoked_on_the_page_records_the_admin_and_address(client):
    from inspections.access.services.api_tokens import api_token_create

    owner = UserFactory(roles=["integrator"])
    token = api_token_create(user=owner, name="plc").token
    ml_admin = UserFactory(roles=["ml_admin"])
    client.force_login(ml_admin)
    response = client.post(f"/accounts/api-tokens/{token.pk}/revoke/", REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 302, response.content[:500]
    [revoked] = _events(AuthEventKind.TOKEN_REVOKED)
    assert (revoked.user, revoked.actor, revoked.ip_address) == (owner, ml_admin, "10.9.9.9")
    assert "'plc'" in revoked.detail and revoked.detail.endswith("on a page")


def test_role_changes_are_recorded_from_either_side():
    user = UserFactory()
    qa, viewer = Group.objects.get_or_create(name="qa")[0], Group.objects.get_or_create(name="viewer")[0]
    user.groups.add(qa)
    viewer.user_set.add(user)
    user.groups.remove(qa)
    user.groups.clear()
    added = [(e.user, e.detail) for e in _events(AuthEventKind.ROLE_ADDED)]
    removed = [(e.user, e.detail) for e in _events(AuthEventKind.ROLE_REMOVED)]
    assert added == [(user, "role qa"), (user, "role viewer")]
    assert removed == [(user, "role qa"), (user, "role viewer")]


def test_roles_changed_in_the_admin_name_the_admin(client):
    user = UserFactory(roles=["viewer"])
    admin = UserFactory(is_staff=True, is_superuser=True)
    admin.save()
    client.force_login(admin)
    qa = Group.objects.get(name="qa")
    page = client.get(f"/admin/auth/user/{user.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(username=user.username, groups=[qa.pk], date_joined_0="2026-01-01", date_joined_1="00:00:00",
                last_login_0="", last_login_1="", user_permissions=[])
    data = {k: v for k, v in data.items() if k not in ("date_joined", "last_login")}
    response = client.post(f"/admin/auth/user/{user.pk}/change/", data, REMOTE_ADDR="10.8.8.8")
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    by_admin = AuthEvent.objects.filter(actor=admin).order_by("id")
    assert [(e.kind, e.user, e.detail, e.ip_address) for e in by_admin] == [
        (AuthEventKind.ROLE_REMOVED, user, "role viewer", "10.8.8.8"),
        (AuthEventKind.ROLE_ADDED, user, "role qa", "10.8.8.8"),
    ]


def test_rows_can_be_neither_changed_nor_deleted_in_the_database():
    user = UserFactory(roles=["qa"])
    event = AuthEvent.objects.filter(user=user).get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuthEvent.objects.filter(pk=event.pk).update(detail="tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuthEvent.objects.filter(pk=event.pk).delete()
    assert AuthEvent.objects.get(pk=event.pk).detail == "role qa"


def test_deleting_a_user_keeps_their_events():
    user = UserFactory(roles=["qa"])
    user_id, name = user.pk, user.username
    user.delete()
    event = AuthEvent.objects.get(user_id=user_id)
    assert event.username == name


@pytest.mark.parametrize("who, status", [("superuser", 200), ("staff", 403)])
def test_only_superusers_read_the_trail_in_the_admin_and_nobody_edits_it(client, who, status):
    UserFactory(roles=["qa"])
    reader = UserFactory(is_staff=True, is_superuser=who == "superuser")
    reader.save()
    client.force_login(reader)
    assert client.get("/admin/inspections/authevent/").status_code == status
    event = AuthEvent.objects.first()
    assert client.get("/admin/inspections/authevent/add/").status_code == 403
    assert client.post(f"/admin/inspections/authevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuthEvent.objects.filter(pk=event.pk).exists()
