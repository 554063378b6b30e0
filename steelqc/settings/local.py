"""Embedded default for `make run` on a bare machine: SQLite, local files, filesystem broker.

It behaves like production in the ways that matter: uploads return at once and the work
happens in a separate worker process.
"""

from pathlib import Path

from .base import *  # noqa: F401,F403
from .base import CELERY_BROKER_TRANSPORT_OPTIONS, DATABASES, STORAGES, VAR_DIR
from .env import env_bool, env_str

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "local-development-only-not-secret")
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

VAR_DIR.mkdir(parents=True, exist_ok=True)
for _option in ("data_folder_in", "processed_folder", "control_folder"):
    _folder = CELERY_BROKER_TRANSPORT_OPTIONS.get(_option)
    if _folder:
        Path(_folder).mkdir(parents=True, exist_ok=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker share the file: wait for locks instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
