"""API tokens: stored hashed, several per user, expiring, revocable, scoped; last use noted at
most once a minute; use from a new address audited; the commands; plain-text tokens migrated."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import (
    LAST_USE_RESOLUTION,
    ApiTokenError,
    api_token_create,
    api_token_revoke,
)
from inspections.models import ApiToken, AuthEvent, AuthEventKind
from tests.factories import UserFactory
from tests.inspections.api.conftest import assert_error

pytestmark = pytest.mark.django_db

IMAGES = "/api/v1/images/"


def _get(secret: str, address: str = "10.0.0.1", path: str = IMAGES):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client.get(path, REMOTE_ADDR=address)


def _dump() -> str:
    """Every column of every token row, as a database dump would hold it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM inspections_apitoken")
        return repr(cursor.fetchall())


def test_the_database_never_holds_the_secret():
    issued = api_token_create(user=UserFactory(roles=["viewer"]), name="camera 1")
    assert issued.secret.startswith("sqc_") and len(issued.secret) >= 44
    assert issued.secret not in _dump()
    assert issued.secret[len("sqc_"):] not in _dump()
    assert issued.token.digest == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.token.prefix == issued.secret[:12]
    assert _get(issued.secret).status_code == 200


def test_several_named_tokens_per_user_each_work_and_revoke_alone():
    user = UserFactory(roles=["viewer"])
    first = api_token_create(user=user, name="camera 1")
    second = api_token_create(user=user, name="camera 2")
    assert first.secret != second.secret
    assert list(user.api_tokens.order_by("id").values_list("name", flat=True)) == ["camera 1", "camera 2"]
    assert api_token_revoke(token=first.token) is True
    assert api_token_revoke(token=first.token) is False  # a second revoke changes nothing
    assert_error(_get(first.secret), 401, "authentication_failed")
    assert _get(second.secret).status_code == 200
    assert AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_REVOKED).count() == 1


@pytest.mark.parametrize("secret", ["sqc_" + "x" * 43, "", "0" * 40])
def test_unknown_secrets_are_refused_with_the_error_shape(secret):
    api_token_create(user=UserFactory(roles=["viewer"]), name="real")
    response = _get(secret)
    assert response.status_code == 401
    if secret:
        assert response.json()["error"]["message"] == "Invalid token."


def test_a_near_miss_with_the_right_prefix_is_refused():
    issued = api_token_create(user=UserFactory(roles=["viewer"]), name="camera")
    wrong = issued.secret[:-1] + ("A" if issued.secret[-1] != "A" else "B")
    assert_error(_get(wrong), 401, "authentication_failed")


def test_an_expired_token_is_refused():
    issued = api_token_create(user=UserFactory(roles=["viewer"]), name="temp",
                              expires_at=timezone.now() + timedelta(hours=1))
    assert _get(issued.secret).status_code == 200
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    error = assert_error(_get(issued.secret), 401, "authentication_failed")
    assert "expired" in error["message"]


def test_an_inactive_owner_is_refused():
    user = UserFactory(roles=["viewer"])
    issued = api_token_create(user=user, name="camera")
    user.is_active = False
    user.save()
    assert_error(_get(issued.secret), 401, "authentication_failed")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": ""}, "name"), ({"name": "x" * 101}, "longer"), ({"name": "a", "scope": "root"}, "scope"),
    ({"name": "a", "expires_at": timezone.now() - timedelta(days=1)}, "future"),
])
def test_bad_requests_make_no_token(kwargs, message):
    with pytest.raises(ApiTokenError, match=message):
        api_token_create(user=UserFactory(), **kwargs)
    assert not ApiToken.objects.exists()
    assert not AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_CREATED).exists()


def test_last_use_is_written_at_most_once_a_minute():
    issued = api_token_create(user=UserFactory(roles=["viewer"]), name="camera")
    _get(issued.secret)
    token = ApiToken.objects.get(pk=issued.token.pk)
    first_use = token.last_used_at
    assert first_use is not None and token.last_used_ip == "10.0.0.1"
    _get(issued.secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first_use  # no write within the minute
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - LAST_USE_RESOLUTION)
    _get(issued.secret)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first_use


def test_no_write_per_request_within_the_minute():
    from django.test.utils import CaptureQueriesContext

    issued = api_token_create(user=UserFactory(roles=["viewer"]), name="camera")
    _get(issued.secret)
    with CaptureQueriesContext(connection) as queries:
        _get(issued.secret)
    assert not [q for q in queries.captured_queries if "UPDATE" in q["sql"] and "apitoken" in q["sql"]]


def test_use_from_a_new_address_is_audited_once_per_change():
    user = UserFactory(roles=["viewer"])
    issued = api_token_create(user=user, name="camera")
    _get(issued.secret, "10.0.0.1")
    _get(issued.secret, "10.0.0.1")
    _get(issued.secret, "10.0.0.2")
    events = list(AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_NEW_ADDRESS).order_by("id"))
    assert [(e.user, e.ip_address) for e in events] == [(user, "10.0.0.1"), (user, "10.0.0.2")]
    assert "first use" in events[0].detail and "before from 10.0.0.1" in events[1].detail
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_ip == "10.0.0.2"


def test_creation_is_audited_with_name_prefix_and_scope():
    user = UserFactory(roles=["integrator"])
    issued = api_token_create(user=user, name="plc 4", scope="upload")
    [event] = AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_CREATED)
    assert event.user == user
    assert "'plc 4'" in event.detail and issued.token.prefix in event.detail and "scope upload" in event.detail
    assert issued.secret not in event.detail


# --- commands -------------------------------------------------------------------------------------

def _command(name: str, *args) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_create_command_prints_a_secret_once_with_name_scope_and_expiry():
    UserFactory(username="plc-7", roles=["integrator"])
    secret = _command("create_api_token", "plc-7", "--name", "press 7", "--scope", "upload", "--expires-days", "30")
    token = ApiToken.objects.get(user__username="plc-7")
    assert (token.name, token.scope, token.prefix) == ("press 7", "upload", secret[:12])
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert secret not in _dump()
    assert _get(secret).status_code == 200
    assert _command("create_api_token", "plc-7") != secret  # a second call makes a second token
    assert ApiToken.objects.filter(user__username="plc-7").count() == 2


def test_create_command_keeps_create_role_and_rotate():
    first = _command("create_api_token", "mes-bridge", "--create", "--role", "integrator")
    token = ApiToken.objects.select_related("user").get(prefix=first[:12])
    assert not token.user.has_usable_password()
    assert list(token.user.groups.values_list("name", flat=True)) == ["integrator"]
    assert token.scope == "admin"
    rotated = _command("create_api_token", "mes-bridge", "--rotate")
    assert_error(_get(first), 401, "authentication_failed")
    assert _get(rotated).status_code == 200


@pytest.mark.parametrize("args", [("nobody",), ("someone", "--scope", "root"), ("someone", "--expires-days", "0"),
                                  ("someone", "--role", "wizard")])
def test_create_command_refuses_bad_arguments(args):
    UserFactory(username="someone")
    with pytest.raises(CommandError):
        _command("create_api_token", *args)
    assert not ApiToken.objects.exists()


def test_list_and_revoke_commands():
    user = UserFactory(username="line-3", roles=["viewer"])
    kept = api_token_create(user=user, name="kept")
    gone = api_token_create(user=user, name="gone")
    listing = _command("list_api_tokens", "line-3")
    assert "kept" in listing and "gone" in listing and gone.token.prefix in listing
    assert kept.secret not in listing and gone.secret not in listing
    assert _command("revoke_api_token", gone.token.prefix) == "Revoked 1 token(s)."
    assert_error(_get(gone.secret), 401, "authentication_failed")
    assert "gone" not in _command("list_api_tokens", "line-3")  # revoked ones only with --all
    assert "revoked" in _command("list_api_tokens", "line-3", "--all")
    assert _command("revoke_api_token", "--user", "line-3") == "Revoked 1 token(s)."
    assert_error(_get(kept.secret), 401, "authentication_failed")
    with pytest.raises(CommandError):
        _command("revoke_api_token", "nothing-like-it")


# --- the page (without a browser; the browser test is tests/e2e/test_api_tokens.py) -----------------

def test_only_ml_admins_reach_the_page(client):
    client.force_login(UserFactory(roles=["qa"]))
    assert client.get("/accounts/api-tokens/").status_code == 403
    assert client.post("/accounts/api-tokens/", {"username": "x", "name": "y", "scope": "read"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_the_page_refuses_bad_input_and_stores_nothing(client):
    client.force_login(UserFactory(roles=["ml_admin"]))
    UserFactory(username="cam")
    for form in [{"username": "nobody", "name": "a", "scope": "read"},
                 {"username": "cam", "name": "", "scope": "read"},
                 {"username": "cam", "name": "a", "scope": "root"},
                 {"username": "cam", "name": "a", "scope": "read", "expires_days": "-3"}]:
        assert client.post("/accounts/api-tokens/", form).status_code == 400
    assert not ApiToken.objects.exists()


def test_the_admin_shows_tokens_without_any_secret(client):
    issued = api_token_create(user=UserFactory(roles=["viewer"]), name="camera")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/inspections/apitoken/{issued.token.pk}/change/").content.decode()
    assert "camera" in page and issued.token.prefix in page
    assert issued.token.digest not in page and issued.secret not in page
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


# --- migration of the plain-text tokens ---------------------------------------------------------------

def test_plain_text_tokens_are_hashed_by_the_migration_and_keep_working():
    import importlib

    from django.apps import apps
    from rest_framework.authtoken.models import Token

    migration = importlib.import_module("inspections.migrations.0012_api_tokens")
    user = UserFactory(roles=["integrator"])
    key = Token.objects.create(user=user).key  # as DRF made them before
    migration.migrate_plain_tokens(apps, None)
    assert not Token.objects.exists()
    token = ApiToken.objects.get()
    assert (token.name, token.scope, token.prefix, token.user) == ("migrated", "admin", key[:12], user)
    assert key not in _dump()
    assert _get(key).status_code == 200
    assert AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_CREATED, user=user, detail__contains="plain-text").exists()


def _authenticate(secret: str):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from inspections.api.authentication import ApiTokenAuthentication

    request = Request(APIRequestFactory().get(IMAGES, HTTP_AUTHORIZATION=f"Token {secret}", REMOTE_ADDR="10.0.0.1"))
    return ApiTokenAuthentication().authenticate(request)


def test_token_owner_and_roles_come_from_one_statement(django_assert_num_queries):
    from inspections.access import roles

    issued = api_token_create(user=UserFactory(roles=[roles.QA, roles.INTEGRATOR]), name="camera")
    _authenticate(issued.secret)  # the first use is written
    with django_assert_num_queries(1):
        user, token = _authenticate(issued.secret)
        assert roles.can_upload(user) and roles.can_label(user) and not roles.can_manage_models(user)
    assert roles.user_roles(user) == {roles.QA, roles.INTEGRATOR}


def test_the_token_and_owner_read_are_the_rows_the_orm_reads():
    user = UserFactory(roles=["viewer"])
    issued = api_token_create(user=user, name="camera", expires_at=timezone.now() + timedelta(days=3))
    _authenticate(issued.secret)
    _, token = _authenticate(issued.secret)
    expected = ApiToken.objects.select_related("user").get(pk=issued.token.pk)
    for model_fields, got, want in ((ApiToken._meta.concrete_fields, token, expected),
                                    (type(user)._meta.concrete_fields, token.user, expected.user)):
        for field in model_fields:
            assert getattr(got, field.attname) == getattr(want, field.attname), field.name
    assert token.last_used_ip == "10.0.0.1" and token.expires_at.tzinfo is not None
    assert token._state.adding is False and token.user._state.adding is False


def test_an_owner_without_role_groups_has_no_roles_and_a_prefix_twin_does_not_match():
    from inspections.access import roles

    issued = api_token_create(user=UserFactory(), name="no role")
    twin = api_token_create(user=UserFactory(roles=[roles.ML_ADMIN]), name="twin")
    ApiToken.objects.filter(pk=twin.token.pk).update(prefix=issued.token.prefix)
    user, token = _authenticate(issued.secret)
    assert token.pk == issued.token.pk and roles.user_roles(user) == set()
    assert_error(_get(issued.secret), 403, "permission_denied")


# --- who may have a token made for them (issue 26, item 4) ---------------------------------------------

def _page_post(client, username: str):
    return client.post("/accounts/api-tokens/", {"username": username, "name": "minted", "scope": "admin"})


def test_an_ml_admin_cannot_make_a_token_for_the_superuser(client):
    client.force_login(UserFactory(roles=["ml_admin"]))
    UserFactory(username="root", is_staff=True, is_superuser=True)
    response = _page_post(client, "root")
    assert response.status_code == 403
    assert "only a superuser" in response.content.decode()
    assert not ApiToken.objects.exists()
    assert not AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_CREATED).exists()


@pytest.mark.parametrize("owner_roles", [["qa"], ["ml_admin"], ["integrator", "qa"], ["viewer"], []])
def test_an_ml_admin_cannot_make_a_token_for_a_person(client, owner_roles):
    client.force_login(UserFactory(roles=["ml_admin"]))
    UserFactory(username="person", roles=owner_roles)
    assert _page_post(client, "person").status_code == 403
    assert not ApiToken.objects.exists()


def test_the_service_refuses_a_token_for_a_person_with_its_code():
    from inspections.errors import PermissionDenied

    admin, person = UserFactory(roles=["ml_admin"]), UserFactory(roles=["qa"])
    with pytest.raises(PermissionDenied) as refused:
        api_token_create(user=person, name="as qa", actor=admin)
    assert refused.value.code == "token_owner_not_allowed"
    assert not ApiToken.objects.exists()


def test_staff_in_the_integrator_role_is_not_api_only(client):
    client.force_login(UserFactory(roles=["ml_admin"]))
    UserFactory(username="staff-plc", roles=["integrator"], is_staff=True)
    assert _page_post(client, "staff-plc").status_code == 403
    assert not ApiToken.objects.exists()


def test_an_ml_admin_makes_tokens_for_api_only_accounts_and_for_themself(client):
    admin = UserFactory(username="ml", roles=["ml_admin"])
    client.force_login(admin)
    call_command("create_api_token", "plc-9", "--create", "--role", "integrator",
                 stdout=io.StringIO(), stderr=io.StringIO())
    ApiToken.objects.all().delete()
    assert _page_post(client, "plc-9").status_code == 201
    assert _page_post(client, "ml").status_code == 201
    assert sorted(ApiToken.objects.values_list("user__username", flat=True)) == ["ml", "plc-9"]
    details = AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_CREATED).values_list("detail", flat=True)
    assert not any("for a person" in detail for detail in details)


def test_a_superuser_makes_a_token_for_a_person_and_it_is_audited(client):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    person = UserFactory(username="qa-person", roles=["qa"])
    client.force_login(root)
    assert _page_post(client, "qa-person").status_code == 201
    token = ApiToken.objects.get()
    assert token.user == person and token.created_by == root
    [event] = AuthEvent.objects.filter(kind=AuthEventKind.TOKEN_CREATED)
    assert (event.user, event.actor) == (person, root)
    assert "for a person by a superuser" in event.detail and "on a page" in event.detail


def test_the_command_line_still_makes_a_token_for_a_person():
    UserFactory(username="qa-person", roles=["qa"])
    secret = _command("create_api_token", "qa-person")
    assert ApiToken.objects.get().prefix == secret[:12]
