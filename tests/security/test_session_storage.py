"""Login sessions are stored under a keyed hash of their key (inspections/access/sessions.py): a
database dump holds no working login. Real PostgreSQL, the real login and logout views; the dump
is a real ``pg_dump --data-only`` of the test database."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from inspections.access.models import HashedSession
from inspections.access.sessions import SessionStore, session_key_hash
from tests.factories import UserFactory

LOGIN = "/accounts/login/"
LOGOUT = "/accounts/logout/"
PAGE = "/review/"  # any page that needs a login
TOKEN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{32,64}(?![A-Za-z0-9])")


def _logged_in_client(username: str) -> Client:
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    return client


def _user_with_cookie(key: str):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    return client.get(PAGE).wsgi_request.user


def _database_dump() -> str:
    settings_dict = connection.settings_dict
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if settings_dict.get(key):
            environment[variable] = str(settings_dict[key])
    result = subprocess.run(["pg_dump", "--data-only", f"--dbname={settings_dict['NAME']}"], env=environment,
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


def test_the_session_engine_is_the_hashed_store():
    assert settings.SESSION_ENGINE == "inspections.access.sessions"


@pytest.mark.django_db
def test_a_login_stores_the_keyed_hash_of_the_cookie_key_and_never_the_key():
    user = UserFactory(roles=["qa"])
    key = _logged_in_client(user.username).cookies[settings.SESSION_COOKIE_NAME].value
    stored = list(HashedSession.objects.values_list("session_key", flat=True))
    assert stored == [session_key_hash(key)]
    assert key not in stored and len(stored[0]) == 64
    assert not Session.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_no_token_in_a_pg_dump_logs_anyone_in_while_the_real_cookies_do():
    people = [UserFactory(username="root", is_superuser=True, is_staff=True),
              UserFactory(roles=["qa"]), UserFactory(roles=["ml_admin"]), UserFactory(roles=["qa"])]
    clients = [_logged_in_client(person.username) for person in people]
    cookies = {client.cookies[settings.SESSION_COOKIE_NAME].value for client in clients}

    tokens = set(TOKEN.findall(_database_dump()))
    logged_in = [token for token in sorted(tokens) if _user_with_cookie(token).is_authenticated]
    assert logged_in == []
    # The dump holds the stored hashes, and they were among the tokens tried.
    assert HashedSession.objects.count() == len(people) and not Session.objects.exists()
    assert {session_key_hash(cookie) for cookie in cookies} <= tokens
    assert not tokens & cookies

    for client, person in zip(clients, people):
        response = client.get(PAGE)
        assert response.wsgi_request.user == person and response.status_code == 200


@pytest.mark.django_db
def test_logout_deletes_the_session_row_and_the_cookie_no_longer_logs_in():
    user, other = UserFactory(roles=["qa"]), UserFactory(roles=["qa"])
    client, staying = _logged_in_client(user.username), _logged_in_client(other.username)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.post(LOGOUT).status_code == 302
    assert not HashedSession.objects.filter(session_key=session_key_hash(key)).exists()
    assert HashedSession.objects.count() == 1
    assert not _user_with_cookie(key).is_authenticated
    assert staying.get(PAGE).wsgi_request.user == other


@pytest.mark.django_db
def test_logging_in_replaces_the_anonymous_session_key():
    user = UserFactory(roles=["qa"])
    before = SessionStore()
    before["seen"] = True
    before.create()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = before.session_key
    client.post(LOGIN, {"username": user.username, "password": "pw"})
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before.session_key
    assert not SessionStore().exists(before.session_key)
    assert list(HashedSession.objects.values_list("session_key", flat=True)) == [session_key_hash(after)]
    assert client.get(PAGE).wsgi_request.user == user


@pytest.mark.django_db
def test_an_expired_session_logs_nobody_in_and_clearsessions_removes_it():
    expired, live = UserFactory(roles=["qa"]), UserFactory(roles=["qa"])
    expired_key = _logged_in_client(expired.username).cookies[settings.SESSION_COOKIE_NAME].value
    live_client = _logged_in_client(live.username)
    HashedSession.objects.filter(session_key=session_key_hash(expired_key)).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    assert not _user_with_cookie(expired_key).is_authenticated
    call_command("clearsessions")
    assert list(HashedSession.objects.values_list("session_key", flat=True)) == [
        session_key_hash(live_client.cookies[settings.SESSION_COOKIE_NAME].value)]
    assert live_client.get(PAGE).wsgi_request.user == live


@pytest.mark.django_db
def test_a_new_secret_key_logs_everyone_out(settings):
    user = UserFactory(roles=["qa"])
    key = _logged_in_client(user.username).cookies[settings.SESSION_COOKIE_NAME].value
    assert _user_with_cookie(key) == user
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert not SessionStore().exists(key)
    assert not _user_with_cookie(key).is_authenticated
