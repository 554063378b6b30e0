"""python manage.py create_api_token USERNAME [--role ROLE] [--create] [--rotate]."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _token(*args) -> str:
    out = io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_printed_token_authenticates_with_the_users_role():
    UserFactory(username="plc-7", roles=["integrator"])
    key = _token("plc-7")
    assert key == Token.objects.get(user__username="plc-7").key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/images/").status_code == 200


def test_create_makes_a_passwordless_user_with_the_role():
    key = _token("mes-bridge", "--create", "--role", "integrator")
    token = Token.objects.select_related("user").get(key=key)
    assert token.user.username == "mes-bridge"
    assert not token.user.has_usable_password()
    assert list(token.user.groups.values_list("name", flat=True)) == ["integrator"]


def test_same_token_on_the_second_call_and_a_new_one_with_rotate():
    UserFactory(username="line-3")
    first = _token("line-3")
    assert _token("line-3") == first
    rotated = _token("line-3", "--rotate")
    assert rotated != first
    assert not Token.objects.filter(key=first).exists()


def test_unknown_user_without_create_is_an_error():
    with pytest.raises(CommandError, match="--create"):
        _token("nobody")
    assert not Token.objects.exists()


def test_unknown_role_is_refused():
    UserFactory(username="someone")
    with pytest.raises(CommandError):
        _token("someone", "--role", "wizard")
