"""Docker cannot run here, so the compose file is checked against the code it names."""

import importlib
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "steelqc:latest"}
SETTINGS_SOURCE = "\n".join(p.read_text() for p in (ROOT / "steelqc" / "settings").glob("*.py"))
OPERATIONS_GUIDE = (ROOT / "docs" / "operations.md").read_text()
CONFIGURATION_TABLE = OPERATIONS_GUIDE.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]


def test_every_production_role_is_in_the_stack():
    assert {"db", "redis", "objects", "web", "inference-worker", "training-worker", "beat"} <= set(COMPOSE["services"])


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_settings_module_exists(name):
    module = APP_SERVICES[name]["environment"]["DJANGO_SETTINGS_MODULE"]
    assert importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_command_names_real_things(name):
    command = APP_SERVICES[name]["command"]
    if command[0] == "gunicorn":
        module, attribute = command[-1].split(":")
        assert hasattr(importlib.import_module(module), attribute)
    elif command[0] == "celery":
        assert command[1:3] == ["-A", "steelqc"]
        assert hasattr(importlib.import_module("steelqc"), "celery_app")
        if "-Q" in command:
            queues = set(command[command.index("-Q") + 1].split(","))
            assert queues <= {queue.name for queue in settings.CELERY_TASK_QUEUES}
    elif command[:2] == ["python", "manage.py"]:
        assert command[2] in get_commands()
    else:
        pytest.fail(f"unchecked command {command}")


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_environment_variables_are_read_and_documented(name):
    for variable in APP_SERVICES[name]["environment"]:
        if variable == "DJANGO_SETTINGS_MODULE":
            continue
        assert re.search(rf"\b{variable}\b", SETTINGS_SOURCE), f"{variable} is not read by the settings"
        assert f"`{variable}`" in CONFIGURATION_TABLE, f"{variable} is not in docs/operations.md's configuration table"


def test_env_example_variables_are_used_somewhere():
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for line in (ROOT / ".env.example").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        variable = line.split("=", 1)[0]
        assert re.search(rf"\b{variable}\b", SETTINGS_SOURCE) or f"${{{variable}}}" in compose_text, variable


def test_long_running_services_wait_for_migrations_and_periodic_jobs():
    for name in ("web", "inference-worker", "training-worker", "beat"):
        depends = COMPOSE["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["periodic-tasks"]["condition"] == "service_completed_successfully", name
    assert COMPOSE["services"]["periodic-tasks"]["command"][2] == "ensure_periodic_tasks"


def test_the_image_collects_static_files_with_the_storage_production_serves_them_with():
    import subprocess
    import sys

    line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if "collectstatic" in line)
    env_words = dict(word.split("=", 1) for word in line.split() if "=" in word and word.isascii() and word[0].isupper())
    code = "import django; django.setup(); from django.conf import settings; print(settings.STORAGES['staticfiles']['BACKEND'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", **env_words})
    assert result.stdout.strip() == "whitenoise.storage.CompressedManifestStaticFilesStorage", result.stderr[-500:]


GUNICORN_CONFIG = ["gunicorn", "--config", "gunicorn.conf.py", "steelqc.wsgi:application"]


def test_one_gunicorn_configuration_for_image_compose_make_and_benchmarks():
    import json

    cmd_line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD"))
    assert json.loads(cmd_line.removeprefix("CMD").strip()) == GUNICORN_CONFIG
    assert COMPOSE["services"]["web"]["command"] == GUNICORN_CONFIG
    makefile = (ROOT / "Makefile").read_text()
    web_recipe = makefile.split("\nweb:", 1)[1].split("\n\t", 1)[1].split("\n", 1)[0]
    assert web_recipe.split() == ["$(VENV)/bin/gunicorn", *GUNICORN_CONFIG[1:]]
    stack = (ROOT / "benchmarks" / "stack.py").read_text()
    assert '"--config", str(ROOT / "gunicorn.conf.py")' in stack
    # Nobody starts gunicorn with its own settings beside the file.
    for text in (cmd_line, makefile, stack, (ROOT / "docker-compose.yml").read_text()):
        assert "--workers" not in text and "--threads" not in text and "--worker-class" not in text


def test_gunicorn_configuration_is_threaded_with_room_above_the_waiter_bound():
    namespace: dict = {}
    exec(compile((ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    assert namespace["worker_class"] == "gthread"
    assert namespace["threads"] > settings.STEELQC_API_MAX_WAITERS
    assert namespace["timeout"] > settings.STEELQC_API_MAX_WAIT_SECONDS
