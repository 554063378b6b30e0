"""The Celery application. Configuration comes from Django settings (``CELERY_*`` names)."""

import os

from celery import Celery

from steelqc.observability import celery_signals_connect

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "steelqc.settings.local")

app = Celery("steelqc")
app.config_from_object("django.conf:settings", namespace="CELERY")
celery_signals_connect()
