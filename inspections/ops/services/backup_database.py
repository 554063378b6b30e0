"""The database half of a restore, done so that a dump can bring tables and rows and nothing that acts.

A dump is code run by the database: a CHECK constraint, a column default or an index expression
may call any function, and a function may do ``COPY ... TO PROGRAM``. So, beside the signature:

- the dump's table of contents may hold only what pg_dump writes for a Django schema (tables,
  their data, sequences, defaults, constraints, indexes); the functions and triggers the migrations
  create (the append-only audit trail and box history) are never taken from the dump but made
  again from the migrations' own SQL;
- pg_restore runs as a role that is not a superuser and holds none of the server-file roles: the
  configured one when it is such a role, else a temporary role made for the restore and dropped after;
- afterwards every CHECK constraint, default and index expression in schema public may call only
  built-in operators and the few built-in functions a Django schema uses, or the restore is undone.
  (Their expression trees are read, not pg_depend: pg_depend records no dependency on built-in
  functions, and ``query_to_xml`` is one.)

On SQLite the backup's file may hold no view and no trigger but the migrations' own, word for word.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3

# The PostgreSQL client tools run with a fixed argument list; connection settings go in the environment.
import subprocess  # nosec B404
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import import_module
from pathlib import Path

import psycopg
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from inspections.errors import ApplicationError

# What pg_dump writes for this application's schema (read off a real backup's `pg_restore --list`);
# every other kind (FUNCTION, PROCEDURE, TRIGGER, RULE, VIEW, EXTENSION, TYPE, DOMAIN, POLICY, CAST,
# OPERATOR, AGGREGATE, LANGUAGE, SERVER, FOREIGN TABLE, PUBLICATION, EVENT TRIGGER, ...) is refused.
# ACL entries are skipped by --no-privileges; a COMMENT is text.
_ENTRY_KINDS = ("TABLE DATA", "TABLE", "SEQUENCE OWNED BY", "SEQUENCE SET", "SEQUENCE", "DEFAULT", "FK CONSTRAINT",
                "CONSTRAINT", "INDEX", "COMMENT", "ACL")
_ANY_SCHEMA = {"COMMENT", "ACL"}
# Migrations whose RunSQL creates functions and triggers. A restore takes them from here, not from the
# dump; a migration that adds or changes such code belongs in this list.
_SCHEMA_CODE_MIGRATIONS = ("0009_auth_events", "0015_defect_boxes")
# Built-in functions a CHECK constraint, default or index expression of a Django schema calls (the
# casts of a numeric comparison, the serial columns of older schemas); operators may be any built-in.
_ALLOWED_FUNCTIONS = {"float4", "float8", "numeric", "int2", "int4", "int8", "nextval"}
# Memberships that let SQL read or write the server's files or run programs there.
_SERVER_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
_ENTRY = re.compile(r"^(\d+); \d+ \d+ (.*)$")


@dataclass(frozen=True)
class _Entry:
    line: str
    kind: str
    schema: str
    tag: str


# --- checks before anything is written ---------------------------------------------------------

def database_check(path: Path, *, engine: str) -> None:
    """Refuse (``backup_refused``) a database file that holds more than tables and their rows."""
    if engine == "postgresql":
        _entries_check(_toc(path))
    else:
        with closing(sqlite3.connect(path)) as source:
            _sqlite_schema_check(source)


def _toc(path: Path) -> list[_Entry]:
    entries = []
    for line in run_tool(["pg_restore", "--list", str(path)]).splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        match = _ENTRY.match(line)
        kind = next((kind for kind in (*_ENTRY_KINDS, "FUNCTION", "TRIGGER")
                     if match and match[2].startswith(kind + " ")), None)
        if kind is None:
            entries.append(_Entry(line, "", "", ""))  # a kind never allowed: refused by the check
            continue
        schema, _, rest = match[2][len(kind) + 1:].partition(" ")
        tag = rest.rpartition(" ")[0]  # the last word is the owner, ignored under --no-owner
        entries.append(_Entry(line, kind, schema, tag))
    return entries


def _entries_check(entries: list[_Entry]) -> None:
    functions, triggers = _schema_code_names()
    refused = [entry.line for entry in entries if not (
        (entry.kind in _ENTRY_KINDS and (entry.schema == "public" or entry.kind in _ANY_SCHEMA))
        or (entry.schema == "public" and f"{entry.kind} {entry.tag}" in functions | triggers)
    )]
    if refused:
        raise ApplicationError(
            f"The backup's database dump holds {len(refused)} item(s) a steelqc database never has (code, views, "
            "types or objects outside schema public); nothing was restored:\n  " + "\n  ".join(refused[:20]),
            code="backup_refused", details={"refused": refused},
        )


def _sqlite_schema_check(source: sqlite3.Connection) -> None:
    known = {statement for sql in _schema_code().values() for statement in sql["sqlite"][0]}
    refused = [f"{kind} {name}" for kind, name, sql in
               source.execute("SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')")
               if kind == "view" or sql not in known]
    if refused:
        raise ApplicationError(f"The backup's database file holds what a steelqc database never has: "
                               f"{', '.join(refused)}; nothing was restored.", code="backup_refused",
                               details={"refused": refused})


# --- the restore ------------------------------------------------------------------------------

def database_restore(path: Path, *, force: bool) -> str | None:
    """Restore the checked database file at ``path``; the PostgreSQL role pg_restore ran as."""
    connection.close()
    if connection.vendor != "postgresql":
        with closing(sqlite3.connect(path)) as source:
            _sqlite_schema_check(source)
            with closing(sqlite3.connect(connection.settings_dict["NAME"])) as target:
                source.backup(target)
        return None
    entries = _toc(path)
    _entries_check(entries)
    functions, triggers = _schema_code_names()
    relations = [entry.tag for entry in entries if entry.kind in ("TABLE", "SEQUENCE")]
    with tempfile.TemporaryDirectory(prefix="steelqc-restore-") as scratch:
        use_list = Path(scratch) / "restore.list"
        # The migrations' functions and triggers are left out (";" comments an entry out) and made again below.
        use_list.write_text("".join(f";{entry.line}\n" if f"{entry.kind} {entry.tag}" in functions | triggers
                                    else f"{entry.line}\n" for entry in entries))
        with _restoring_role(relations=relations, force=force) as (role, environment, undo):
            run_tool(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                      "--exit-on-error", f"--use-list={use_list}", f"--dbname={connection.settings_dict['NAME']}",
                      str(path)], environment=environment)
            calls = _expression_calls_refused()
            if calls:
                undo()
                raise ApplicationError(
                    "The backup's database holds expressions that call functions a steelqc schema never calls; "
                    "what it restored was dropped again:\n  " + "\n  ".join(calls[:20]),
                    code="backup_refused", details={"refused": calls},
                )
    _schema_code_restore(dumped={entry.tag for entry in entries if entry.kind == "FUNCTION"})
    return role


@contextmanager
def _restoring_role(*, relations: list[str], force: bool) -> Iterator[tuple[str, dict[str, str], Callable[[], None]]]:
    """The role pg_restore runs as, its connection environment, and how to drop what it restored.

    The configured role when it is no superuser and cannot reach the server's files or make roles;
    for a superuser, a temporary role that can only log in and create in schema public. Its objects
    go to the configured role afterwards, and it is dropped, whether the restore worked or not.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        user, superuser, createrole = cursor.fetchone()
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) "
                       "AND pg_has_role(current_user, oid, 'MEMBER')", [list(_SERVER_ROLES)])
        server_roles = [name for (name,) in cursor.fetchall()]
    if not superuser and not createrole and not server_roles:
        yield user, postgres_environment(), lambda: _relations_drop(relations)
        return
    if not superuser:
        raise ApplicationError(
            f"The database role {user} may " + ("create roles" if createrole else f"act as {', '.join(server_roles)}")
            + ", so a restore as it could act on the server; restore as a role without that.",
            code="restore_role_unsafe",
        )
    role, password = f"steelqc_restore_{secrets.token_hex(6)}", secrets.token_hex(32)
    quoted, database = _identifier(role), _identifier(connection.settings_dict["NAME"])
    until = (timezone.now() + timedelta(days=1)).isoformat()
    with connection.cursor() as cursor:
        # Hex name and password, an ISO time: nothing here comes from the backup.
        cursor.execute(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                       f"NOBYPASSRLS PASSWORD '{password}' VALID UNTIL '{until}'")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"GRANT CONNECT ON DATABASE {database} TO {quoted}")
            cursor.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {quoted}")
            if force:  # --clean drops what the dump holds: the restoring role must own it
                for statement in _ownership_statements(relations, quoted):
                    cursor.execute(statement)
        environment = {**postgres_environment(), "PGUSER": role, "PGPASSWORD": password}
        _login_check(role, password)
        yield role, environment, lambda: _owned_drop(quoted)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REASSIGN OWNED BY {quoted} TO {_identifier(user)}")
            cursor.execute(f"DROP OWNED BY {quoted}")
            cursor.execute(f"DROP ROLE {quoted}")


def _ownership_statements(relations: list[str], role: str) -> list[str]:
    """ALTER ... OWNER for the tables and free-standing sequences of schema public the dump replaces."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'p', 'S') AND c.relname = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_depend d "
            "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))", [relations],
        )
        return [f"ALTER {'SEQUENCE' if kind == 'S' else 'TABLE'} public.{_identifier(name)} OWNER TO {role}"
                for name, kind in cursor.fetchall()]


def _login_check(role: str, password: str) -> None:
    settings_dict = connection.settings_dict
    options = settings_dict.get("OPTIONS") or {}
    try:
        psycopg.connect(host=settings_dict.get("HOST") or None, port=settings_dict.get("PORT") or None,
                        dbname=settings_dict["NAME"], user=role, password=password, connect_timeout=15,
                        sslmode=options.get("sslmode")).close()
    except psycopg.OperationalError as error:
        raise ApplicationError(
            f"The configured database role is a superuser, so the restore made the temporary role {role} to run "
            f"pg_restore without a superuser's rights, but the server does not let it log in ({error}). Run "
            "steelqc with a database role that is not a superuser (docs/operations.md, Backup and restore) and "
            "restore as that role.", code="restore_role_login",
        ) from None


def _owned_drop(role: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")


def _relations_drop(relations: list[str]) -> None:
    with connection.cursor() as cursor:
        for name in relations:
            cursor.execute(f"DROP TABLE IF EXISTS public.{_identifier(name)} CASCADE")
            cursor.execute("SELECT 1 FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = %s "
                           "AND relkind = 'S'", [name])
            if cursor.fetchone():
                cursor.execute(f"DROP SEQUENCE IF EXISTS public.{_identifier(name)} CASCADE")


def _expression_calls_refused() -> list[str]:
    """The function calls of CHECK constraints, defaults and index expressions in schema public that a
    Django schema never makes, as "<where>: <function>"."""
    with connection.cursor() as cursor:
        cursor.execute(r"""
            WITH expressions AS (
                SELECT 'constraint ' || c.conname AS place, c.conbin::text AS tree FROM pg_constraint c
                 WHERE c.connamespace = 'public'::regnamespace AND c.conbin IS NOT NULL
                UNION ALL
                SELECT 'default of ' || d.adrelid::regclass::text || '.' || d.adnum, d.adbin::text FROM pg_attrdef d
                  JOIN pg_class r ON r.oid = d.adrelid WHERE r.relnamespace = 'public'::regnamespace
                UNION ALL
                SELECT 'index ' || i.indexrelid::regclass::text,
                       coalesce(i.indexprs::text, '') || coalesce(i.indpred::text, '')
                  FROM pg_index i JOIN pg_class r ON r.oid = i.indexrelid WHERE r.relnamespace = 'public'::regnamespace
            ), calls AS (
                SELECT e.place, m[1] AS field, m[2]::oid AS target
                  FROM expressions e,
                       regexp_matches(e.tree, ':(funcid|opfuncid|hashfuncid|negfuncid|opno) (\d+)', 'g') m
                 WHERE m[2] <> '0'
            )
            SELECT c.place, c.field, coalesce(p.oid::regprocedure::text, o.oid::regoperator::text, c.target::text),
                   coalesce(p.proname, ''), coalesce(p.pronamespace, o.oprnamespace) = 'pg_catalog'::regnamespace
              FROM calls c
              LEFT JOIN pg_proc p ON c.field <> 'opno' AND p.oid = c.target
              LEFT JOIN pg_operator o ON c.field = 'opno' AND o.oid = c.target
        """)
        rows = cursor.fetchall()
    return sorted({f"{place}: {shown}" for place, field, shown, name, built_in in rows
                   if not built_in or (field == "funcid" and name not in _ALLOWED_FUNCTIONS)})


def _schema_code_restore(*, dumped: set[str]) -> None:
    """Make the migrations' functions and triggers again, from the migrations, where the dump had them."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for sql in _schema_code().values():
                if not {f"FUNCTION {tag}" for tag in dumped} & _names(sql)[0]:
                    continue  # a backup from before this migration: `migrate` runs it
                for statement in [*sql["postgresql"][1], *sql["postgresql"][0]]:
                    cursor.execute(statement)
    except DatabaseError as error:
        raise ApplicationError(f"The restored database lacks what its migrations' triggers need: {error}",
                               code="restore_incomplete") from None


@cache
def _schema_code() -> dict[str, dict]:
    return {name: import_module(f"inspections.migrations.{name}").SQL for name in _SCHEMA_CODE_MIGRATIONS}


def _names(sql: dict) -> tuple[set[str], set[str]]:
    """The table-of-contents names ("FUNCTION f()", "TRIGGER table trigger") of a migration's PostgreSQL code."""
    statements = " ".join(sql["postgresql"][0])
    functions = {f"FUNCTION {name}()" for name in re.findall(r"CREATE FUNCTION (\w+)\(\)", statements)}
    triggers = {f"TRIGGER {table} {name}"
                for name, table in re.findall(r"CREATE TRIGGER (\w+) .*? ON (\w+)", statements)}
    return functions, triggers


def _schema_code_names() -> tuple[set[str], set[str]]:
    functions, triggers = set(), set()
    for sql in _schema_code().values():
        more_functions, more_triggers = _names(sql)
        functions |= more_functions
        triggers |= more_triggers
    return functions, triggers


def _identifier(name: str) -> str:
    """``name`` quoted as a PostgreSQL identifier, whatever it holds (names may come from a dump)."""
    if "\x00" in name:
        raise ApplicationError(f"Unusable name in the backup: {name!r}.", code="backup_refused")
    return '"' + name.replace('"', '""') + '"'


# --- the PostgreSQL client tools ------------------------------------------------------------

def postgres_environment() -> dict[str, str]:
    """The connection settings as libpq variables: the password never appears on a command line."""
    settings_dict = connection.settings_dict
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    for key, variable in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"),
                          ("PASSWORD", "PGPASSWORD"), ("NAME", "PGDATABASE")):
        if settings_dict.get(key):
            environment[variable] = str(settings_dict[key])
    if (settings_dict.get("OPTIONS") or {}).get("sslmode"):
        environment["PGSSLMODE"] = settings_dict["OPTIONS"]["sslmode"]
    return environment


def run_tool(command: list[str], *, environment: dict[str, str] | None = None) -> str:
    """Run a PostgreSQL client tool; its standard output."""
    try:
        # A fixed tool name and arguments built here, no shell.
        result = subprocess.run(command, env=environment or postgres_environment(),  # nosec B603
                                capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ApplicationError(f"{command[0]} is not installed: install the PostgreSQL client tools of the "
                               "server's major version.", code="tool_missing") from None
    if result.returncode != 0:
        raise ApplicationError(f"{command[0]} failed: {result.stderr.strip()[-2000:]}", code="tool_failed")
    return result.stdout
