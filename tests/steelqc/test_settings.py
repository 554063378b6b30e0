"""Settings come from the environment and fail loudly when something required is missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
GOOD_PRODUCTION_ENV = {
    "SECRET_KEY": "k" * 20 + "2f9x!q8Zr#Lp0vW7tYb3mN6cD1sE4uH" + "j" * 10,
    "DATABASE_URL": "postgres://steelqc@db.internal:5432/steelqc",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "steelqc.plant.example",
}


def _run(args: list[str], env: dict[str, str], settings: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_KEY", "DATABASE_URL", "CELERY_", "ALLOWED_HOSTS", "STEELQC_"))}
    base.update(env, DJANGO_SETTINGS_MODULE=settings)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_a_required_variable(missing):
    env = {k: v for k, v in GOOD_PRODUCTION_ENV.items() if k != missing}
    result = _run(["manage.py", "check"], env, "steelqc.settings.production")
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = _run(["manage.py", "check"], {**GOOD_PRODUCTION_ENV, "SECRET_KEY": "short"}, "steelqc.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


def test_production_check_deploy_is_clean():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], GOOD_PRODUCTION_ENV, "steelqc.settings.production")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_malformed_number_names_the_variable():
    result = _run(["manage.py", "check"], {"STEELQC_MAX_UPLOAD_BYTES": "lots"}, "steelqc.settings.local")
    assert result.returncode != 0
    assert "STEELQC_MAX_UPLOAD_BYTES must be an integer" in result.stderr


def test_storage_is_chosen_by_environment():
    code = "from django.conf import settings; print(settings.STORAGES['default']['BACKEND'])"
    env = {**GOOD_PRODUCTION_ENV, "STEELQC_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "steelqc"}
    s3 = _run(["-c", "import django; django.setup(); " + code], env, "steelqc.settings.production")
    assert s3.stdout.strip() == "storages.backends.s3.S3Storage", s3.stderr
    local = _run(["-c", "import django; django.setup(); " + code], GOOD_PRODUCTION_ENV, "steelqc.settings.production")
    assert local.stdout.strip() == "django.core.files.storage.FileSystemStorage", local.stderr


def test_unknown_storage_kind_is_refused():
    result = _run(["manage.py", "check"], {"STEELQC_STORAGE": "ftp"}, "steelqc.settings.local")
    assert result.returncode != 0
    assert "STEELQC_STORAGE must be 'local' or 's3'" in result.stderr


def test_tests_never_fall_back_to_sqlite():
    result = _run(["manage.py", "check"], {"DATABASE_URL": "sqlite:///tmp/x.sqlite3"}, "steelqc.settings.test")
    assert result.returncode != 0
    assert "Tests run against PostgreSQL" in result.stderr


def test_every_variable_the_settings_read_is_in_the_readme_table():
    import re

    source = "\n".join(p.read_text() for p in (ROOT / "steelqc" / "settings").glob("*.py"))
    names = set(re.findall(r'env_(?:str|bool|int|float|list)\("([A-Z0-9_]+)"', source))
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert len(names) > 20
    assert missing == []
