"""A restore trusts only a backup this installation's key signed, reads nothing outside the backup
folder, and lets a database dump bring tables and rows but nothing that acts: one crafted backup
per way in (real PostgreSQL; the crafted dumps come from small scratch databases)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import uuid
from contextlib import closing, contextmanager
from importlib import import_module
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from inspections.errors import ApplicationError
from inspections.ops.services import backup_database
from inspections.ops.services.backup import (
    MANIFEST_FILE,
    POSTGRES_DUMP_FILE,
    STORAGE_FOLDER,
    backup_restore,
    backup_verify,
)
from inspections.ops.services.backup_database import database_check
from inspections.ops.services.backup_folder import (
    SIGNATURE_FILE,
    MemberError,
    key_id,
    manifest_sign,
    member_create,
)
from tests.inspections import test_backup_restore as restore_tests

# The installation, its backup and an empty database beside the test database, as the restore tests make them.
installation = restore_tests.installation
backup_dir = restore_tests.backup_dir
empty_database = restore_tests.empty_database
KEY = "backup-key-of-the-test-installation"
OTHER_KEY = "backup-key-of-another-installation"
STORED = {"images/ab/coil-1.png": b"\x89PNG coil one" * 50, "models/v1-x/config.json": b'{"classes": 2}'}


@pytest.fixture(autouse=True)
def backup_key(settings):
    settings.STEELQC_BACKUP_KEY = KEY
    settings.STEELQC_BACKUP_OLD_KEYS = []


def _sign(folder: Path, manifest: dict) -> None:
    content = (json.dumps(manifest, indent=1) + "\n").encode()
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    (folder / SIGNATURE_FILE).unlink(missing_ok=True)
    (folder / MANIFEST_FILE).write_bytes(content)
    manifest_sign(folder, content)


def _entry(content: bytes) -> dict:
    return {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def _manifest(database: bytes, files: dict[str, bytes]) -> dict:
    return {"format": 1, "created_at": "2026-12-01T02:30:00+00:00", "steelqc_version": "test", "mlcore_version": "test",
            "database": {"engine": "postgresql", "file": POSTGRES_DUMP_FILE, **_entry(database)},
            "migrations": {}, "counts": {}, "missing": [],
            "files": [{"name": name, **_entry(content)} for name, content in files.items()]}


@pytest.fixture
def signed_backup(tmp_path) -> Path:
    """A backup folder as backup_installation writes one (its dump is opaque bytes: nothing restores it)."""
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / POSTGRES_DUMP_FILE).write_bytes(b"PGDMP" + os.urandom(500))
    for name, content in STORED.items():
        (folder / STORAGE_FOLDER / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / STORAGE_FOLDER / name).write_bytes(content)
    _sign(folder, _manifest((folder / POSTGRES_DUMP_FILE).read_bytes(), STORED))
    return folder


def _refused(folder: Path, **options) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        backup_verify(backup_dir=folder, **options)
    return refused.value


# --- the signature --------------------------------------------------------------------------

def test_a_signed_backup_verifies(signed_backup):
    assert [entry["name"] for entry in backup_verify(backup_dir=signed_backup)["files"]] == list(STORED)
    signature = json.loads((signed_backup / SIGNATURE_FILE).read_text())
    assert signature["algorithm"] == "hmac-sha256" and signature["key_id"] == key_id(KEY.encode())


def test_a_backup_without_a_signature_is_refused_by_verify_and_restore(signed_backup):
    (signed_backup / SIGNATURE_FILE).unlink()
    error = _refused(signed_backup)
    assert error.code == "backup_unsigned" and key_id(KEY.encode()) in error.message
    with pytest.raises(CommandError, match="has no manifest.sig"):
        call_command("restore_installation", str(signed_backup))  # refused before the database is touched
    assert backup_verify(backup_dir=signed_backup, allow_unsigned=True)["files"]


def test_a_backup_signed_with_another_key_is_refused_naming_both_keys(signed_backup, settings):
    settings.STEELQC_BACKUP_KEY = OTHER_KEY
    error = _refused(signed_backup)
    assert error.code == "backup_signature_invalid"
    assert f"key {key_id(KEY.encode())} signed it" in error.message
    assert f"this installation has key {key_id(OTHER_KEY.encode())}" in error.message


def test_a_manifest_changed_after_signing_is_refused(signed_backup):
    # Whoever swaps a stored file can recompute its sha256 in the manifest, but not the signature.
    name = "images/ab/coil-1.png"
    (signed_backup / STORAGE_FOLDER / name).write_bytes(b"another image")
    manifest = json.loads((signed_backup / MANIFEST_FILE).read_text())
    manifest["files"][0].update(_entry(b"another image"))
    (signed_backup / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    error = _refused(signed_backup)
    assert error.code == "backup_signature_invalid" and "has changed since" in error.message


def test_a_signature_by_an_old_key_is_accepted_while_the_key_is_listed(signed_backup, settings):
    settings.STEELQC_BACKUP_KEY = OTHER_KEY
    settings.STEELQC_BACKUP_OLD_KEYS = ["an-even-older-key", KEY]
    assert backup_verify(backup_dir=signed_backup)["format"] == 1
    settings.STEELQC_BACKUP_OLD_KEYS = ["an-even-older-key"]
    assert _refused(signed_backup).code == "backup_signature_invalid"


def test_without_a_backup_key_the_key_comes_from_secret_key(signed_backup, settings):
    settings.STEELQC_BACKUP_KEY = ""
    _sign(signed_backup, json.loads((signed_backup / MANIFEST_FILE).read_text()))
    derived = json.loads((signed_backup / SIGNATURE_FILE).read_text())["key_id"]
    assert derived not in (key_id(KEY.encode()), key_id(settings.SECRET_KEY.encode()))
    assert backup_verify(backup_dir=signed_backup)
    settings.SECRET_KEY = "another-installation-" + "x" * 40
    assert _refused(signed_backup).code == "backup_signature_invalid"


def test_a_backup_signed_before_the_backup_key_was_set_still_restores_here_only(signed_backup, settings):
    settings.STEELQC_BACKUP_KEY = ""
    _sign(signed_backup, json.loads((signed_backup / MANIFEST_FILE).read_text()))
    settings.STEELQC_BACKUP_KEY = KEY    # production now requires a key of its own
    assert backup_verify(backup_dir=signed_backup)
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-rotated-secret-key-" + "y" * 40, [old_secret]
    assert backup_verify(backup_dir=signed_backup)
    settings.SECRET_KEY_FALLBACKS = []
    error = _refused(signed_backup)
    assert error.code == "backup_signature_invalid"
    assert error.details["keys"][0] == key_id(KEY.encode())


# --- no symbolic links, no way out --------------------------------------------------------------

def test_a_stored_file_swapped_for_a_symbolic_link_is_refused_not_followed(signed_backup, tmp_path):
    name = "images/ab/coil-1.png"
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(STORED[name])  # the same bytes: following the link would pass every sha256
    (signed_backup / STORAGE_FOLDER / name).unlink()
    (signed_backup / STORAGE_FOLDER / name).symlink_to(outside)
    error = _refused(signed_backup)
    assert error.code == "backup_damaged"
    assert f"{STORAGE_FOLDER}/{name}: {STORAGE_FOLDER}/{name} is a symbolic link" in error.message


def test_a_stored_folder_swapped_for_a_symbolic_link_is_refused(signed_backup, tmp_path):
    real = signed_backup / STORAGE_FOLDER / "images"
    real.rename(tmp_path / "images-elsewhere")
    real.symlink_to(tmp_path / "images-elsewhere", target_is_directory=True)
    error = _refused(signed_backup)
    assert error.code == "backup_damaged"
    assert f"{STORAGE_FOLDER}/images/ab/coil-1.png: {STORAGE_FOLDER}/images is a symbolic link" in error.message
    assert "models/v1-x/config.json" not in error.message  # the other folder is fine


def test_a_database_file_that_is_a_symbolic_link_is_refused(signed_backup, tmp_path):
    (tmp_path / "dump").write_bytes((signed_backup / POSTGRES_DUMP_FILE).read_bytes())
    (signed_backup / POSTGRES_DUMP_FILE).unlink()
    (signed_backup / POSTGRES_DUMP_FILE).symlink_to(tmp_path / "dump")
    assert "database.dump: database.dump is a symbolic link" in _refused(signed_backup).message


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd", "images/../../../outside.png", "images/./x.png"])
def test_a_signed_manifest_naming_a_file_outside_the_folder_is_refused(signed_backup, tmp_path, name):
    (tmp_path / "outside.png").write_bytes(b"outside")
    manifest = json.loads((signed_backup / MANIFEST_FILE).read_text())
    manifest["files"].append({"name": name, **_entry(b"outside")})
    _sign(signed_backup, manifest)
    error = _refused(signed_backup)
    assert error.code == "not_a_backup" and repr(name) in error.message


def test_a_backup_never_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "partial").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "partial" / STORAGE_FOLDER).symlink_to(tmp_path / "target", target_is_directory=True)
    with pytest.raises(MemberError, match="is a symbolic link"):
        member_create(tmp_path / "partial", f"{STORAGE_FOLDER}/images/x.png")
    (tmp_path / "partial" / "manifest.json").symlink_to(tmp_path / "target" / "manifest.json")
    with pytest.raises(MemberError):
        member_create(tmp_path / "partial", "manifest.json")
    assert list((tmp_path / "target").iterdir()) == []


# --- the database file ----------------------------------------------------------------------

def test_a_sqlite_file_with_a_view_or_a_foreign_trigger_is_refused(tmp_path):
    own_triggers = import_module("inspections.migrations.0009_auth_events").SQL["sqlite"][0]
    path = tmp_path / "database.sqlite3"
    with closing_sqlite(path) as database:
        database.execute("CREATE TABLE inspections_authevent (id INTEGER PRIMARY KEY, kind TEXT)")
        for statement in own_triggers:
            database.execute(statement)
    database_check(path, engine="sqlite")  # the migrations' own triggers are what a real backup has

    with closing_sqlite(path) as database:
        database.execute("CREATE VIEW every_event AS SELECT * FROM inspections_authevent")
    with pytest.raises(ApplicationError, match="view every_event") as refused:
        database_check(path, engine="sqlite")
    assert refused.value.code == "backup_refused"

    with closing_sqlite(path) as database:
        database.execute("DROP VIEW every_event")
        database.execute("DROP TRIGGER inspections_authevent_no_update")
        database.execute("CREATE TRIGGER inspections_authevent_no_update BEFORE UPDATE ON inspections_authevent "
                         "BEGIN SELECT 1; END")  # the migration's name, other code
    with pytest.raises(ApplicationError, match="trigger inspections_authevent_no_update"):
        database_check(path, engine="sqlite")


def closing_sqlite(path: Path):
    return closing(sqlite3.connect(path, isolation_level=None))


def _admin(database: str = "postgres") -> psycopg.Connection:
    settings_dict = connection.settings_dict
    return psycopg.connect(host=settings_dict["HOST"] or "127.0.0.1", port=settings_dict["PORT"] or 5432,
                           user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None, dbname=database,
                           autocommit=True)


def _crafted_backup(folder: Path, sql: str) -> Path:
    """A backup whose dump is of a scratch database ``sql`` made, signed with this installation's key,
    as whoever holds the key (or an unsigned backup let through) could hand one in."""
    source = f"steelqc_crafted_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{source}"')
    try:
        with _admin(source) as scratch:
            scratch.execute(sql.replace("{source}", source))
        folder.mkdir()
        settings_dict = connection.settings_dict
        subprocess.run(["pg_dump", "--format=custom", f"--file={folder / POSTGRES_DUMP_FILE}",
                        f"--host={settings_dict['HOST'] or '127.0.0.1'}", f"--port={settings_dict['PORT'] or 5432}",
                        f"--username={settings_dict['USER']}", source], check=True, capture_output=True, timeout=60)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{source}" WITH (FORCE)')
    _sign(folder, _manifest((folder / POSTGRES_DUMP_FILE).read_bytes(), {}))
    return folder


@pytest.fixture
def restore_target(empty_database, django_db_blocker):
    """The configured database switched, for this test, to an empty one beside the test database
    (which the test never touches, so it needs no flush afterwards)."""
    test_database = connection.settings_dict["NAME"]
    with django_db_blocker.unblock():
        connection.close()
        connection.settings_dict["NAME"] = empty_database
        try:
            yield empty_database
        finally:
            connection.close()
            connection.settings_dict["NAME"] = test_database


def _tables(database: str) -> list[str]:
    with _admin(database) as target:
        return [name for (name,) in target.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def _restore_roles() -> list[str]:
    with _admin() as admin:
        rows = admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'steelqc_restore_%'")
        return [name for (name,) in rows]


@pytest.fixture
def marker():
    """A file the database server could create (its own /tmp), named for this test; removed after."""
    path = Path(f"/tmp/steelqc-restore-ran-a-program-{uuid.uuid4().hex}")
    yield path
    path.unlink(missing_ok=True)


def _program_dump_sql(marker: Path) -> str:
    """A table whose CHECK constraint calls a function that runs a program on the database server
    for every row, wherever the dump is restored (not in the scratch database it is made in)."""
    return f"""
        CREATE FUNCTION public.coil_ok(integer) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            IF current_database() <> '{{source}}' THEN
                COPY (SELECT current_user, current_setting('is_superuser')) TO PROGRAM 'cat > {marker}';
            END IF;
            RETURN true;
        END $$;
        CREATE TABLE public.coil (id integer CONSTRAINT coil_checked CHECK (public.coil_ok(id)));
        INSERT INTO public.coil VALUES (1), (2);
    """


def _server_runs_programs_for_a_superuser(marker: Path) -> None:
    """The server does run a superuser's COPY TO PROGRAM here, so a file not made proves the restore stopped it."""
    probe = marker.with_name(marker.name + "-probe")
    with _admin() as admin:
        # The program reads what COPY writes: one that exits first (touch) breaks the pipe now and then.
        admin.execute(f"COPY (SELECT 1) TO PROGRAM 'cat > {probe}'")
    assert probe.exists()
    probe.unlink()


def test_a_dump_holding_a_function_is_refused_before_anything_is_restored(tmp_path, restore_target, marker):
    _server_runs_programs_for_a_superuser(marker)
    folder = _crafted_backup(tmp_path / "crafted", _program_dump_sql(marker))
    with pytest.raises(ApplicationError) as refused:
        backup_restore(backup_dir=folder)
    assert refused.value.code == "backup_refused"
    assert "FUNCTION public coil_ok(integer)" in refused.value.message
    assert not marker.exists()
    assert _tables(restore_target) == []


def test_a_crafted_dump_let_through_still_runs_without_a_superusers_rights(tmp_path, restore_target, marker,
                                                                           monkeypatch):
    _server_runs_programs_for_a_superuser(marker)
    folder = _crafted_backup(tmp_path / "crafted", _program_dump_sql(marker))
    monkeypatch.setattr(backup_database, "_entries_check", lambda entries: None)  # as if the list check missed it
    roles = []
    login_check = backup_database._login_check
    monkeypatch.setattr(backup_database, "_login_check", lambda role, password: (roles.append(role),
                                                                                   login_check(role, password)))
    with pytest.raises(ApplicationError) as failed:
        backup_restore(backup_dir=folder)
    assert failed.value.code == "tool_failed"
    assert "pg_execute_server_program" in failed.value.message  # refused to the role pg_restore ran as
    assert not marker.exists()
    assert _tables(restore_target) == []  # one transaction: nothing stays
    assert len(roles) == 1 and roles[0].startswith("steelqc_restore_") and roles[0] not in _restore_roles()


def test_an_expression_calling_an_unexpected_function_is_undone(tmp_path, restore_target):
    # No function of its own, so the list passes, but query_to_xml runs any query, later as the app's role.
    folder = _crafted_backup(tmp_path / "crafted", """
        CREATE TABLE public.coil (id integer, CONSTRAINT coil_checked
            CHECK (length(query_to_xml('SELECT 1', false, false, '')::text) > 0));
        INSERT INTO public.coil VALUES (1);
    """)
    with pytest.raises(ApplicationError) as refused:
        backup_restore(backup_dir=folder)
    assert refused.value.code == "backup_refused"
    assert "constraint coil_checked: query_to_xml(text,boolean,boolean,text)" in refused.value.message
    assert _tables(restore_target) == []


@pytest.mark.django_db(transaction=True)
def test_an_unsigned_backup_restores_with_the_loud_flag_as_a_temporary_role(backup_dir, empty_database, tmp_path):
    (backup_dir / SIGNATURE_FILE).unlink()
    assert not [path for path in backup_dir.rglob("*") if path.is_symlink()]
    environment = {**restore_tests._environment(empty_database, tmp_path / "restored-media"),
                   "STEELQC_BACKUP_KEY": OTHER_KEY}
    result = restore_tests._run(["manage.py", "restore_installation", "--insecure-allow-unsigned", str(backup_dir)],
                                environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING: --insecure-allow-unsigned" in result.stderr
    assert "images 4" in result.stdout
    role = result.stdout.split("pg_restore ran as role ", 1)[1].split(",", 1)[0]
    assert role.startswith("steelqc_restore_") and role not in _restore_roles()
    with _admin(empty_database) as restored:
        owners = {owner for (owner,) in restored.execute("SELECT DISTINCT tableowner FROM pg_tables "
                                                          "WHERE schemaname = 'public'")}
        triggers = {name for (name,) in restored.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    assert owners == {connection.settings_dict["USER"]}
    assert triggers == {"inspections_authevent_append_only", "inspections_defectboxchange_append_only"}

    refused = restore_tests._run(["manage.py", "restore_installation", "--verify", str(backup_dir)], environment)
    assert refused.returncode != 0 and "has no manifest.sig" in refused.stderr


@contextmanager
def _as_plain_role(database: str):
    """The configured database reached as a login role that is no superuser and owns it."""
    role, user = f"steelqc_app_{uuid.uuid4().hex[:8]}", connection.settings_dict["USER"]
    with _admin() as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER')
        admin.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
    connection.close()
    connection.settings_dict["USER"] = role
    try:
        yield role
    finally:
        connection.close()
        connection.settings_dict["USER"] = user
        with _admin(database) as target:
            target.execute(f'REASSIGN OWNED BY "{role}" TO "{user}"')
            target.execute(f'DROP OWNED BY "{role}"')
        with _admin() as admin:
            admin.execute(f'DROP ROLE "{role}"')


def test_a_configured_role_that_is_no_superuser_restores_as_itself(tmp_path, restore_target):
    plain = _crafted_backup(tmp_path / "plain", "CREATE TABLE public.coil (id integer PRIMARY KEY); "
                                                "INSERT INTO public.coil VALUES (1), (2);")
    crafted = _crafted_backup(tmp_path / "crafted", """
        CREATE TABLE public.coil (id integer, CONSTRAINT coil_checked
            CHECK (length(query_to_xml('SELECT 1', false, false, '')::text) > 0));
    """)
    with _as_plain_role(restore_target) as role:
        assert backup_database.database_restore(plain / POSTGRES_DUMP_FILE, force=False) == role
        with _admin(restore_target) as target:
            assert target.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'coil'").fetchall() == [(role,)]
        with pytest.raises(ApplicationError, match="query_to_xml"):
            backup_database.database_restore(crafted / POSTGRES_DUMP_FILE, force=True)
        assert _tables(restore_target) == []
