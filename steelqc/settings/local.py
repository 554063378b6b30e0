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
    # Two model checks that only say SQLite lacks what PostgreSQL is given, printed by every
    # manage.py command. Both are harmless here:
    # - models.W040 (index INCLUDE columns): the review queue's covering index `image_review_queue`
    #   is built on PostgreSQL only (migration 0021); the embedded queue is small.
    # - models.W047 (unique with nulls not distinct): `line_minute_unique` is not created on SQLite,
    #   and nothing relies on it there: line counts are added by a get-or-create under the write
    #   lock every IMMEDIATE transaction takes, so two processes cannot both create a row
    #   (inspections/line/services/stats.py); PostgreSQL's upsert needs the constraint and has it.
    SILENCED_SYSTEM_CHECKS = ["models.W040", "models.W047"]
