"""A backup holds no login session and a restore starts with none (real PostgreSQL; the SQLite
copy's clean-up on a plain SQLite file)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client

from inspections.access.models import HashedSession
from inspections.access.sessions import session_key_hash
from inspections.ops.services import backup
from inspections.ops.services.backup import MANIFEST_FILE, POSTGRES_DUMP_FILE
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent.parent
SESSION_TABLES = (HashedSession._meta.db_table, Session._meta.db_table)

RESTORE_AND_COUNT_SESSIONS = """
import json, sys, django
django.setup()
from django.core.management import call_command
from django.contrib.sessions.models import Session
from inspections.access.models import HashedSession
from django.contrib.auth import get_user_model
call_command("restore_installation", sys.argv[1])
print(json.dumps({"hashed": HashedSession.objects.count(), "plain": Session.objects.count(),
                  "users": get_user_model().objects.count()}))
"""


def _log_in_everyone() -> set[str]:
    """Logs a superuser and two others in through the login page; their session cookies."""
    people = [UserFactory(is_superuser=True, is_staff=True), UserFactory(roles=["qa"]), UserFactory(roles=["ml_admin"])]
    cookies = set()
    for person in people:
        client = Client()
        assert client.post("/accounts/login/", {"username": person.username, "password": "pw"}).status_code == 302
        cookies.add(client.cookies[settings.SESSION_COOKIE_NAME].value)
    assert HashedSession.objects.count() == len(people)
    return cookies


def _pg_environment() -> dict[str, str]:
    settings_dict = connection.settings_dict
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if settings_dict.get(key):
            environment[variable] = str(settings_dict[key])
    return environment


def _dump_as_sql(backup_dir: Path) -> str:
    return subprocess.run(["pg_restore", "--data-only", "--file=-", str(backup_dir / POSTGRES_DUMP_FILE)],
                          env=_pg_environment(), capture_output=True, text=True, timeout=120, check=True).stdout


def _copy_rows(sql: str, table: str) -> list[str]:
    """The data lines of ``table``'s COPY block in a plain-SQL dump (none when the table's data is left out)."""
    match = re.search(rf"^COPY [\w.]*{table} .*?FROM stdin;\n(.*?)^\\\.$", sql, re.MULTILINE | re.DOTALL)
    return [line for line in match.group(1).splitlines() if line] if match else []


@pytest.fixture
def empty_database():
    settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_sessions_{uuid.uuid4().hex[:6]}"[:63]
    params = dict(host=settings_dict["HOST"] or "127.0.0.1", port=settings_dict["PORT"] or 5432,
                  user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None, dbname="postgres")
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _restore_elsewhere(backup_dir: Path, database: str, media: Path) -> dict:
    settings_dict = connection.settings_dict
    url = (f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
           f"{settings_dict['PORT'] or 5432}/{database}")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.test", "DATABASE_URL": url,
                   "MEDIA_ROOT": str(media)}
    result = subprocess.run([sys.executable, "-c", RESTORE_AND_COUNT_SESSIONS, str(backup_dir)], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_the_backup_dump_holds_no_session_row_and_counts_none(tmp_path):
    cookies = _log_in_everyone()
    call_command("backup_installation", str(tmp_path / "backup"))
    sql = _dump_as_sql(tmp_path / "backup")
    for table in SESSION_TABLES:
        assert _copy_rows(sql, table) == []
    assert _copy_rows(sql, "auth_user")  # the rest of the data is there
    for cookie in cookies:
        assert cookie not in sql and session_key_hash(cookie) not in sql
    counts = json.loads((tmp_path / "backup" / MANIFEST_FILE).read_text())["counts"]
    assert counts["inspections.HashedSession"] == 0 and counts["sessions.Session"] == 0
    assert HashedSession.objects.count() == len(cookies)  # the running installation keeps its logins


@pytest.mark.django_db(transaction=True)
def test_a_restore_leaves_no_session_even_from_a_backup_that_holds_some(tmp_path, empty_database, monkeypatch):
    _log_in_everyone()
    # As a backup made before sessions were left out: the session tables dumped with their rows.
    monkeypatch.setattr(backup, "_session_models", lambda: [])
    call_command("backup_installation", str(tmp_path / "old-backup"))
    assert len(_copy_rows(_dump_as_sql(tmp_path / "old-backup"), HashedSession._meta.db_table)) == 3

    restored = _restore_elsewhere(tmp_path / "old-backup", empty_database, tmp_path / "restored-media")
    assert restored == {"hashed": 0, "plain": 0, "users": 3}


def test_the_sqlite_copy_keeps_no_session_bytes(tmp_path):
    path = tmp_path / "copy.sqlite3"
    marker = "session-data-" + uuid.uuid4().hex
    with sqlite3.connect(path) as copy:
        for table in SESSION_TABLES:
            copy.execute(f'CREATE TABLE "{table}" (session_key TEXT PRIMARY KEY, session_data TEXT)')
            copy.executemany(f'INSERT INTO "{table}" VALUES (?, ?)', [(f"k{i}", marker * 50) for i in range(200)])
        # REGEXP as Django's CHECK constraints use it (the class-name format), unknown to plain sqlite3.
        copy.create_function("REGEXP", 2, lambda pattern, value: 1)
        copy.execute("CREATE TABLE \"auth_user\" (id INTEGER PRIMARY KEY, username TEXT CHECK (username REGEXP 'k'))")
        copy.execute("INSERT INTO auth_user VALUES (1, 'kept')")
    copy = sqlite3.connect(path)
    try:
        backup._sqlite_sessions_remove(copy)
        assert [copy.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in SESSION_TABLES] == [0, 0]
        assert copy.execute("SELECT username FROM auth_user").fetchall() == [("kept",)]
    finally:
        copy.close()
    assert marker.encode() not in path.read_bytes()
