"""Backup and restore of an installation: the database in its own tools' format plus every stored
file the database refers to, with a manifest (name, size, sha256 of each file) checked both ways.

Taken while the platform runs. On PostgreSQL the dump, the table counts and the list of files
come from one snapshot (``pg_export_snapshot`` shared with ``pg_dump --snapshot``). Stored files
are only ever added under new names (images are content-addressed, model artefacts are written
once under a new prefix), so every file that snapshot refers to is still there when the files
are copied after it; files stored meanwhile belong to rows the dump does not hold and are left out.

Login sessions are left out (their tables are dumped empty and counted as 0), and a restore ends
with none: a backup holds no working login, and a restored installation starts with everyone
logged out.

A backup is trusted only as far as its signature goes: ``manifest.sig`` (backup_folder.py) shows
that an installation holding this one's backup key wrote the manifest, and the manifest's sha256
sums then vouch for every file. Even so, the database file is restored so that it can bring tables
and rows and nothing that acts (backup_database.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.apps import apps
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection, models, transaction
from django.utils import timezone

import mlcore
import steelqc
from inspections.catalog.models import InspectionImage
from inspections.errors import ApplicationError
from inspections.ops.services.backup_database import (
    database_check,
    database_restore,
    run_tool,
)
from inspections.ops.services.backup_folder import (
    MANIFEST_FILE,
    MemberError,
    manifest_sign,
    manifest_signature_check,
    member_copy,
    member_create,
    member_digest,
    member_name,
    member_open,
    regular_file_check,
)
from inspections.registry.models import DatasetSnapshot, ModelVersion, TrainingRun
from inspections.registry.services.artefacts import ON_DEMAND
from inspections.review.models import Review

STORAGE_FOLDER = "storage"
POSTGRES_DUMP_FILE = "database.dump"
SQLITE_FILE = "database.sqlite3"
DATABASE_FILES = {"postgresql": POSTGRES_DUMP_FILE, "sqlite": SQLITE_FILE}
FORMAT_VERSION = 1
# The tables a person checks first; the manifest counts every table.
MAIN_TABLES = {
    "images": InspectionImage, "reviews": Review, "model versions": ModelVersion,
    "training runs": TrainingRun, "dataset snapshots": DatasetSnapshot,
}
_CHUNK = 1 << 20

Rows = Callable[[str], list[tuple]]


@dataclass
class BackupReport:
    path: Path
    manifest: dict
    missing: list[str] = field(default_factory=list)
    key_id: str = ""


@dataclass
class RestoreReport:
    manifest: dict
    files_written: int = 0
    files_present: int = 0
    restored_as: str | None = None  # the PostgreSQL role pg_restore ran as


def main_counts(manifest: dict) -> dict[str, int]:
    """The main tables' row counts recorded in ``manifest``, by their plain names."""
    return {name: manifest["counts"].get(model._meta.label, 0) for name, model in MAIN_TABLES.items()}


# --- backup ---------------------------------------------------------------------------------

def backup_create(*, out_dir: Path, allow_missing: bool = False) -> BackupReport:
    """Write a backup into ``out_dir`` (new or empty): database, stored files, ``manifest.json`` and
    its signature ``manifest.sig``.

    A stored file the database refers to but storage lacks fails the backup (the names are listed
    in the error), unless ``allow_missing``: then the manifest lists them under ``missing``.
    The backup appears under ``out_dir`` only when complete.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ApplicationError(f"{out_dir} exists and is not an empty folder; back up into a new one.",
                               code="backup_exists")
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # left over by an interrupted backup
    partial.mkdir(parents=True)
    try:
        database, contents = _database_backup(partial)
        files, missing = _files_copy(names=contents["files"], folder=partial)
        if missing and not allow_missing:
            raise ApplicationError(
                f"{len(missing)} stored file(s) the database refers to are missing from storage: "
                + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
                + ". Pass --allow-missing to back up without them.",
                code="files_missing", details={"missing": missing},
            )
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": timezone.now().isoformat(),
            "steelqc_version": steelqc.__version__,
            "mlcore_version": mlcore.__version__,
            "database": database,
            "migrations": contents["migrations"],
            "counts": contents["counts"],
            "files": files,
            "missing": missing,
        }
        manifest_bytes = (json.dumps(manifest, indent=1) + "\n").encode()
        with member_create(partial, MANIFEST_FILE) as handle:
            handle.write(manifest_bytes)
        key_id = manifest_sign(partial, manifest_bytes)
        if out_dir.exists():
            out_dir.rmdir()
        partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupReport(path=out_dir, manifest=manifest, missing=missing, key_id=key_id)


def _database_backup(folder: Path) -> tuple[dict, dict]:
    vendor = connection.vendor
    if vendor == "postgresql":
        path = folder / POSTGRES_DUMP_FILE
        contents = _postgres_dump(path)
    elif vendor == "sqlite":
        path = folder / SQLITE_FILE
        contents = _sqlite_copy(path)
    else:
        raise ApplicationError(f"Backups support PostgreSQL and SQLite, not {vendor}.", code="unsupported_database")
    regular_file_check(folder, path.name)  # the tools wrote it by path: make sure it is a file of its own
    size, digest = member_digest(folder, path.name)
    return {"engine": vendor, "file": path.name, "size": size, "sha256": digest}, contents


def _postgres_dump(path: Path) -> dict:
    if connection.in_atomic_block:
        raise ApplicationError("A backup cannot run inside a database transaction.", code="in_transaction")
    with transaction.atomic():
        with connection.cursor() as cursor:
            # The dump and everything this transaction reads see the same snapshot.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
        left_out = [f"--exclude-table-data={table}" for table in _session_tables()]
        run_tool(["pg_dump", "--format=custom", f"--snapshot={snapshot}", *left_out, f"--file={path}"])
        return _contents(_django_rows)


def _sqlite_copy(path: Path) -> dict:
    # The online backup API copies a consistent state; counts and files are read from that copy.
    with closing(sqlite3.connect(connection.settings_dict["NAME"])) as source, closing(sqlite3.connect(path)) as copy:
        source.backup(copy)
        _sqlite_sessions_remove(copy)
        return _contents(lambda sql: copy.execute(sql).fetchall())


def _regexp(pattern: str | None, value: object) -> bool | None:
    """SQLite's REGEXP as Django defines it."""
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


def _sqlite_sessions_remove(copy: sqlite3.Connection) -> None:
    """Empty the session tables of ``copy``; VACUUM rewrites the file so no freed page keeps a row."""
    # VACUUM checks every row again, and a CHECK constraint (the class-name format) uses REGEXP,
    # which Django registers on its own connections only.
    copy.create_function("REGEXP", 2, _regexp, deterministic=True)
    present = {name for (name,) in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in _session_tables():
        if table in present:
            copy.execute(f"DELETE FROM {connection.ops.quote_name(table)}")  # nosec B608 - names from the models only
    copy.commit()
    copy.execute("VACUUM")


def _django_rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _backed_up_models() -> list[type[models.Model]]:
    return [model for model in apps.get_models() if model._meta.managed and not model._meta.proxy]


def _select(columns: str, table: str) -> str:
    """A SELECT of quoted column and table names taken from the models, never from input."""
    return f"SELECT {columns} FROM {connection.ops.quote_name(table)}"  # nosec B608 - names from the models only


def _session_models() -> list[type[models.Model]]:
    return [model for model in _backed_up_models() if issubclass(model, AbstractBaseSession)]


def _session_tables() -> list[str]:
    return [model._meta.db_table for model in _session_models()]


def _table_counts(rows: Rows) -> dict[str, int]:
    """Row counts of what the backup holds: the session tables are backed up empty."""
    sessions = set(_session_models())
    return {model._meta.label: 0 if model in sessions else rows(_select("COUNT(*)", model._meta.db_table))[0][0]
            for model in _backed_up_models()}


def _contents(rows: Rows) -> dict:
    """Counts, latest migrations and stored file names, as the database read through ``rows`` has them."""
    quote = connection.ops.quote_name
    names: set[str] = set()
    for model in _backed_up_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.FileField):
                names.update(name for (name,) in rows(_select(quote(model_field.column), model._meta.db_table)) if name)
    prefixes = [prefix for (prefix,) in rows(_select(quote("artifact_path"), ModelVersion._meta.db_table)) if prefix]
    for prefix in prefixes:
        # Files made on a first download (the SavedModel zip) are left out: one may be half
        # written while it is listed, and it is made again when next asked for.
        listed = [name for name in _storage_listing(prefix.rstrip("/")) if PurePosixPath(name).name not in ON_DEMAND]
        # An artefact prefix with no files is reported like a missing file.
        names.update(listed or [f"{prefix.rstrip('/')}/"])
    latest: dict[str, str] = {}
    for app, name in rows(_select(f"{quote('app')}, {quote('name')}", "django_migrations")):
        latest[app] = max(latest.get(app, name), name)
    return {"counts": _table_counts(rows), "files": sorted(names), "migrations": dict(sorted(latest.items()))}


def _storage_listing(prefix: str) -> list[str]:
    try:
        directories, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return []
    names = [f"{prefix}/{name}" for name in files]
    for directory in directories:
        names.extend(_storage_listing(f"{prefix}/{directory}"))
    return names


def _files_copy(*, names: list[str], folder: Path) -> tuple[list[dict], list[str]]:
    files: list[dict] = []
    missing: list[str] = []
    for name in names:
        if name.endswith("/") or not default_storage.exists(name):
            missing.append(name)
            continue
        hasher = hashlib.sha256()
        size = 0
        with default_storage.open(name, "rb") as source, member_create(folder, _storage_member(name)) as sink:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                hasher.update(chunk)
                sink.write(chunk)
                size += len(chunk)
        files.append({"name": name, "size": size, "sha256": hasher.hexdigest()})
    return files, missing


# --- verify ---------------------------------------------------------------------------------

def backup_verify(*, backup_dir: Path, allow_unsigned: bool = False) -> dict:
    """The manifest of the backup in ``backup_dir`` once its signature and every file check out.

    Without a signature by this installation's backup key (or an old one) the backup is refused
    (``backup_unsigned``, ``backup_signature_invalid``) unless ``allow_unsigned``. A missing or
    changed file, or one that is a symbolic link or lies behind one, raises ``backup_damaged``
    naming every such file.
    """
    backup_dir = Path(backup_dir)
    manifest = _manifest_read(backup_dir, allow_unsigned=allow_unsigned)
    problems = []
    database = manifest["database"]
    problems += _file_problems(backup_dir, database["file"], database)
    for entry in manifest["files"]:
        problems += _file_problems(backup_dir, _storage_member(entry["name"]), entry)
    if problems:
        raise ApplicationError(
            f"The backup in {backup_dir} is damaged; {len(problems)} file(s) do not match the manifest:\n  "
            + "\n  ".join(problems),
            code="backup_damaged", details={"problems": problems},
        )
    return manifest


def _manifest_read(backup_dir: Path, *, allow_unsigned: bool) -> dict:
    """The manifest, parsed from the very bytes whose signature was checked."""
    try:
        with member_open(backup_dir, MANIFEST_FILE) as handle:
            content = handle.read()
    except (OSError, MemberError) as error:
        raise ApplicationError(f"{backup_dir} holds no readable {MANIFEST_FILE} ({error}).",
                               code="not_a_backup") from None
    if not allow_unsigned:
        manifest_signature_check(backup_dir, content)
    try:
        manifest = json.loads(content)
    except ValueError as error:
        raise ApplicationError(f"{backup_dir / MANIFEST_FILE} is not JSON ({error}).", code="not_a_backup") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or not _manifest_complete(manifest):
        raise ApplicationError(f"{backup_dir / MANIFEST_FILE} is not a backup manifest of format {FORMAT_VERSION}.",
                               code="not_a_backup")
    for entry in manifest["files"]:
        member_name(entry["name"])  # an unsafe name refuses the whole backup, naming it
    return manifest


def _manifest_complete(manifest: dict) -> bool:
    database, files, counts = manifest.get("database"), manifest.get("files"), manifest.get("counts")
    return (isinstance(database, dict) and database.get("file") == DATABASE_FILES.get(database.get("engine"))
            and _entry_complete(database)
            and isinstance(files, list) and all(isinstance(entry, dict) and isinstance(entry.get("name"), str)
                                                and _entry_complete(entry) for entry in files)
            and isinstance(counts, dict) and all(isinstance(label, str) and type(count) is int
                                                 for label, count in counts.items()))


def _entry_complete(entry: dict) -> bool:
    size, digest = entry.get("size"), entry.get("sha256")
    return (type(size) is int and size >= 0 and isinstance(digest, str) and len(digest) == 64
            and all(ch in "0123456789abcdef" for ch in digest))


def _file_problems(backup_dir: Path, member: str, entry: dict) -> list[str]:
    try:
        size, digest = member_digest(backup_dir, member)
    except MemberError as error:
        return [f"{member}: {error}"]
    if size != entry["size"]:
        return [f"{member}: {size} bytes, the manifest says {entry['size']}"]
    if digest != entry["sha256"]:
        return [f"{member}: sha256 differs from the manifest"]
    return []


def _storage_member(name: str) -> str:
    """The path inside the backup folder of the stored file ``name``."""
    return f"{STORAGE_FOLDER}/{member_name(name)}"


def _stored_digest(name: str) -> str:
    hasher = hashlib.sha256()
    with default_storage.open(name, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


# --- restore --------------------------------------------------------------------------------

def backup_restore(*, backup_dir: Path, force: bool = False, allow_unsigned: bool = False) -> RestoreReport:
    """Restore the backup in ``backup_dir`` into the configured database and storage.

    The backup is verified first (its signature too, unless ``allow_unsigned``), and its database
    file is checked to hold only tables and rows (``backup_refused``) before anything is written.
    The files go back before the database, so every file the restored rows refer to is there once
    they are. A database that already has tables, or a stored file with the same name and other
    bytes, is refused unless ``force``. Afterwards the table counts are checked against the
    manifest, ``migrate`` brings an older schema up to date, and every login session is removed
    (an older backup may hold some).
    """
    backup_dir = Path(backup_dir)
    manifest = backup_verify(backup_dir=backup_dir, allow_unsigned=allow_unsigned)
    database = manifest["database"]
    if database["engine"] != connection.vendor:
        raise ApplicationError(f"The backup holds a {database['engine']} database; the configured "
                               f"one is {connection.vendor}.", code="wrong_database")
    tables = connection.introspection.table_names()
    if tables and not force:
        raise ApplicationError(
            f"The database {connection.settings_dict['NAME']} is not empty ({len(tables)} tables); restore into an "
            "empty database, or pass --force to replace what the backup holds.", code="database_not_empty",
        )
    with tempfile.TemporaryDirectory(prefix="steelqc-restore-") as scratch:
        # The tools open the file by its path: they get a private copy, checked again, nobody can swap.
        copy = Path(scratch) / database["file"]
        if member_copy(backup_dir, database["file"], copy) != database["sha256"]:
            raise ApplicationError(f"{database['file']} changed while the backup was being restored.",
                                   code="backup_damaged")
        database_check(copy, engine=database["engine"])
        report = backup_files_restore(backup_dir=backup_dir, manifest=manifest, force=force)
        report.restored_as = database_restore(copy, force=force)
    found_counts = {label: _restored_count(label) for label in manifest["counts"]}
    differing = {label: (count, found_counts[label]) for label, count in manifest["counts"].items()
                 if found_counts[label] not in (None, count)}
    if differing:
        raise ApplicationError(
            "The restored database's row counts differ from the manifest: "
            + ", ".join(f"{label} {found} instead of {count}" for label, (count, found) in differing.items()),
            code="restore_incomplete",
        )
    call_command("migrate", interactive=False, verbosity=0)
    _sessions_clear()  # an older backup may still hold sessions
    return report


def _sessions_clear() -> None:
    for model in _session_models():
        model._default_manager.all().delete()


def backup_files_restore(*, backup_dir: Path, manifest: dict, force: bool = False) -> RestoreReport:
    """Copy the backup's files into the configured storage and check each one's sha256 there."""
    backup_dir = Path(backup_dir)
    report = RestoreReport(manifest=manifest)
    pending, conflicts = [], []
    for entry in manifest["files"]:
        name = entry["name"]
        if not default_storage.exists(name):
            pending.append(entry)
        elif _stored_digest(name) == entry["sha256"]:
            report.files_present += 1
        else:
            conflicts.append(name)
    if conflicts and not force:
        raise ApplicationError(
            f"Storage already holds {len(conflicts)} file(s) with other bytes under the backup's names: "
            + ", ".join(conflicts[:20]) + ". Pass --force to replace them.",
            code="storage_conflict", details={"conflicts": conflicts},
        )
    replaced = set(conflicts)
    for name in replaced:
        default_storage.delete(name)
    pending += [entry for entry in manifest["files"] if entry["name"] in replaced]
    damaged = []
    for entry in pending:
        try:
            with member_open(backup_dir, _storage_member(entry["name"])) as handle:
                saved = default_storage.save(entry["name"], File(handle))
        except MemberError as error:
            raise ApplicationError(f"The backup in {backup_dir} is damaged: {_storage_member(entry['name'])}: "
                                   f"{error}.", code="backup_damaged") from None
        if saved != entry["name"]:
            default_storage.delete(saved)
            raise ApplicationError(f"Storage stored {entry['name']} as {saved}; nothing may be renamed.",
                                   code="storage_conflict")
        # Checked as storage has it: a file swapped in the backup after the check is caught here.
        if _stored_digest(saved) != entry["sha256"]:
            damaged.append(saved)
        report.files_written += 1
    if damaged:
        raise ApplicationError(f"Storage returned other bytes than written for: {', '.join(damaged)}.",
                               code="storage_damaged", details={"damaged": damaged})
    return report


def _restored_count(label: str) -> int | None:
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None  # a table this version no longer has
    with connection.cursor() as cursor:
        cursor.execute(_select("COUNT(*)", model._meta.db_table))
        return cursor.fetchone()[0]
