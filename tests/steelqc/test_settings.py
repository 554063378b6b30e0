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
    "STEELQC_BACKUP_KEY": "b" * 8 + "Qm4!vT9zK2pX7wR" + "c" * 12,
}


def _run(args: list[str], env: dict[str, str], settings: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_KEY", "DATABASE_URL", "CELERY_", "ALLOWED_HOSTS", "STEELQC_"))}
    base.update(env, DJANGO_SETTINGS_MODULE=settings)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS",
                                     "STEELQC_BACKUP_KEY"])
def test_production_refuses_to_start_without_a_required_variable(missing):
    env = {k: v for k, v in GOOD_PRODUCTION_ENV.items() if k != missing}
    result = _run(["manage.py", "check"], env, "steelqc.settings.production")
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = _run(["manage.py", "check"], {**GOOD_PRODUCTION_ENV, "SECRET_KEY": "short"}, "steelqc.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


@pytest.mark.parametrize("key", ["short-backup-key", "a" * 40, GOOD_PRODUCTION_ENV["SECRET_KEY"]])
def test_production_refuses_a_weak_backup_key_or_the_secret_key_again(key):
    result = _run(["manage.py", "check"], {**GOOD_PRODUCTION_ENV, "STEELQC_BACKUP_KEY": key},
                  "steelqc.settings.production")
    assert result.returncode != 0
    assert "STEELQC_BACKUP_KEY must be at least 32 characters" in result.stderr


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


def test_every_variable_the_settings_read_is_in_the_operations_guide():
    import re

    source = "\n".join(p.read_text() for p in (ROOT / "steelqc" / "settings").glob("*.py"))
    names = set(re.findall(r'env_(?:str|bool|int|float|list|json_object)\(\s*"([A-Z0-9_]+)"', source))
    guide = (ROOT / "docs" / "operations.md").read_text()
    missing = sorted(name for name in names if f"`{name}`" not in guide)
    assert len(names) > 20
    assert missing == []


# Each setting that must differ in production, its development value, and the warning
# `check --deploy` gives for it: so the clean run above proves production sets every one.
WEAKENED_IN_DEVELOPMENT = {
    "SECRET_KEY": ("local-development-only-not-secret", "security.W009"),
    "DEBUG": (True, "security.W018"),
    "ALLOWED_HOSTS": ([], "security.W020"),
    "SESSION_COOKIE_SECURE": (False, "security.W012"),
    "SESSION_COOKIE_HTTPONLY": (False, "security.W015"),
    "CSRF_COOKIE_SECURE": (False, "security.W016"),
    "SECURE_HSTS_SECONDS": (0, "security.W004"),
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": (False, "security.W005"),
    "SECURE_SSL_REDIRECT": (False, "security.W008"),
    "SECURE_CONTENT_TYPE_NOSNIFF": (False, "security.W006"),
    "X_FRAME_OPTIONS": ("SAMEORIGIN", "security.W019"),
}


def test_check_deploy_warns_about_each_production_setting_left_at_its_development_value():
    code = (
        "import json, django\n"
        "django.setup()\n"
        "from django.core.checks import run_checks\n"
        "from django.test import override_settings\n"
        f"cases = {WEAKENED_IN_DEVELOPMENT!r}\n"
        "found = {}\n"
        "for name, (value, _) in cases.items():\n"
        "    with override_settings(**{name: value}):\n"
        "        found[name] = sorted(m.id for m in run_checks(include_deployment_checks=True) if not m.is_silenced())\n"
        "print(json.dumps(found))\n"
    )
    result = _run(["-c", code], GOOD_PRODUCTION_ENV, "steelqc.settings.production")
    assert result.returncode == 0, result.stderr[-2000:]
    found = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    missed = {name: check for name, (_, check) in WEAKENED_IN_DEVELOPMENT.items() if found[name] != [check]}
    assert missed == {}, found


def test_a_webhook_url_that_is_not_http_is_refused_at_start_up():
    result = _run(["manage.py", "check"], {"STEELQC_PROMOTION_WEBHOOK_URL": "file:///etc/passwd"}, "steelqc.settings.local")
    assert result.returncode != 0
    assert "STEELQC_PROMOTION_WEBHOOK_URL must be an http:// or https:// URL" in result.stderr


def test_login_limits_come_from_the_environment():
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())")
    env = {"STEELQC_LOGIN_FAILURE_LIMIT": "3", "STEELQC_LOGIN_COOLOFF_MINUTES": "2"}
    result = _run(["-c", code], env, "steelqc.settings.local")
    assert result.stdout.split()[-2:] == ["3", "120.0"], result.stderr[-2000:]
    refused = _run(["manage.py", "check"], {"STEELQC_LOGIN_FAILURE_LIMIT": "0"}, "steelqc.settings.local")
    assert "STEELQC_LOGIN_FAILURE_LIMIT must be at least 1" in refused.stderr
