"""Test settings: the real PostgreSQL and Redis on 127.0.0.1 — never SQLite, never eager tasks."""

import os

from django.core.exceptions import ImproperlyConfigured

# Defaults for the project's test machines; the environment may point elsewhere.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/15")

from .base import *  # noqa: E402,F401,F403
from .env import env_str  # noqa: E402

SECRET_KEY = env_str("SECRET_KEY", "test-only-not-secret")
DATABASES["default"]["TEST"] = {"NAME": env_str("STEELQC_TEST_DB_NAME", "steelqc_test")}  # noqa: F405
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":  # noqa: F405
    raise ImproperlyConfigured("Tests run against PostgreSQL: set DATABASE_URL to a postgres:// URL.")
if not CELERY_BROKER_URL.startswith("redis://"):  # noqa: F405
    raise ImproperlyConfigured("Tests run against Redis: set CELERY_BROKER_URL to a redis:// URL.")
CELERY_TASK_ALWAYS_EAGER = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
