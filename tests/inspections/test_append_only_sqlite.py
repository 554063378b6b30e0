"""`make run`'s SQLite database keeps the append-only tables append-only after every migration
(SQLite drops a table's triggers when a migration rebuilds it)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from tests.conftest import ROOT


def test_a_freshly_migrated_sqlite_database_refuses_edits_of_the_audit_trails(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.local", "DATABASE_URL": f"sqlite:///{database}",
           "STEELQC_VAR_DIR": str(tmp_path / "var")}
    migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    with sqlite3.connect(database) as connection:
        triggers = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"inspections_authevent_no_update", "inspections_authevent_no_delete",
            "inspections_defectboxchange_no_update"} <= triggers, triggers
