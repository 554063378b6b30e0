"""manage.py on the embedded installation prints what the command has to say, not the start-up
noise of its libraries; list_api_tokens names its columns."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from inspections.access.services.api_tokens import api_token_create
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


def test_a_command_on_the_embedded_installation_prints_no_sqlite_warnings_and_no_axes_banner(tmp_path):
    env = {name: value for name, value in os.environ.items()
           if name not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "STEELQC_EVENTS_REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="steelqc.settings.local", STEELQC_VAR_DIR=str(tmp_path), LOG_LEVEL="INFO")
    # With the database's checks, as migrate (and so every make run) runs them.
    result = subprocess.run([sys.executable, "manage.py", "check", "--database", "default"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    assert "W040" not in output and "W047" not in output
    assert "AXES" not in output
    assert "System check identified no issues (2 silenced)." in output


@pytest.mark.django_db
def test_list_api_tokens_prints_column_headers_above_aligned_rows():
    user = UserFactory(username="line-9-camera", roles=["integrator"])
    token = api_token_create(user=user, name="press 9", scope="upload").token
    out = io.StringIO()
    call_command("list_api_tokens", "line-9-camera", stdout=out)
    header, row = out.getvalue().splitlines()
    assert header.split() == ["id", "user", "name", "scope", "prefix", "created", "expires", "last", "used", "state"]
    assert row.index("line-9-camera") == header.index("user") and row.index("upload") == header.index("scope")
    assert token.prefix in row and row.split()[-1] == "live" and "never" in row
