"""Web processes never load TensorFlow for a page: importing every page module and rendering the
training pages (which say which backbones can train) leaves tensorflow and keras out of
sys.modules. A fresh process, since the test process has loaded TensorFlow long ago; the first
visit to the training page used to take 14.5 s for the import alone."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.db import connection

import inspections
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

RENDER_SCRIPT = textwrap.dedent("""
    import importlib, json, sys
    import django
    django.setup()
    from django.db import transaction
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, an in-memory mailbox

    for name in json.loads(sys.argv[1]):
        importlib.import_module(name)
    importlib.import_module("steelqc.urls")
    imported = sorted(name for name in ("tensorflow", "keras") if name in sys.modules)

    from inspections.registry.models import TrainingRun
    from tests.factories import UserFactory

    statuses = {}
    with transaction.atomic():
        client = Client()
        client.force_login(UserFactory(roles=["ml_admin"]))
        run = TrainingRun.objects.create(status="running", phase="head epoch 3", progress=0.6,
                                         parameters={"backbone": "efficientnet_lite0", "head_epochs": 40})
        for path in ("/training/", f"/training/{run.pk}/", "/models/"):
            statuses[path.replace(str(run.pk), "RUN")] = client.get(path).status_code
        transaction.set_rollback(True)
    print(json.dumps({"after_imports": imported, "statuses": statuses,
                      "after_pages": sorted(name for name in ("tensorflow", "keras") if name in sys.modules)}))
""")


def _page_modules() -> list[str]:
    return sorted(module.name for module in pkgutil.walk_packages(inspections.__path__, "inspections.")
                  if ".pages" in module.name)


def test_page_modules_and_the_training_pages_load_no_tensorflow():
    db = settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.test", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                           f"{connection.settings_dict['NAME']}"}
    modules = _page_modules()
    assert "inspections.registry.pages.versions" in modules
    run = subprocess.run([sys.executable, "-c", RENDER_SCRIPT, json.dumps(modules)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["statuses"] == {"/training/": 200, "/training/RUN/": 200, "/models/": 200}
    assert result["after_imports"] == []
    assert result["after_pages"] == [], "a page loaded TensorFlow into the web process"
