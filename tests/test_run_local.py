"""Every way to run steelqc serves inference and training from separate worker processes, so an
upload (and its ?wait) is predicted while a model trains; read from the files, as nothing here
can start `make run` or compose."""

import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest
import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
RUN_LOCAL = ROOT / "scripts" / "run-local.sh"


def _shell_commands(script: str) -> list[list[str]]:
    """The script's commands as words, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n", " ", script)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if shlex.split(line, comments=True)]


def _worker_queues(command: list[str]) -> set[str]:
    return set(command[command.index("-Q") + 1].split(","))


def _celery_workers(commands: list[list[str]]) -> list[list[str]]:
    return [command for command in commands if "celery" in command and "worker" in command]


def test_make_run_is_the_run_local_script():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/run-local.sh" in recipe


def test_make_run_starts_inference_line_and_training_workers_side_by_side():
    workers = _celery_workers(_shell_commands(RUN_LOCAL.read_text()))
    assert [_worker_queues(worker) for worker in workers] == [{"inference"}, {"line"}, {"training"}]
    assert all(worker[-1] == "&" for worker in workers), "a worker in the foreground would keep the next from starting"
    assert ["--beat" in worker for worker in workers] == [True, False, False], "beat runs once, beside inference"


def test_compose_runs_inference_line_and_training_in_separate_services():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    workers = {name: service["command"] for name, service in services.items()
               if service.get("command", [])[:1] == ["celery"] and "worker" in service["command"]}
    queues = {name: _worker_queues(command) for name, command in workers.items()}
    assert queues == {"inference-worker": {"inference"}, "line-worker": {"line"}, "training-worker": {"training"}}


def test_make_run_starts_a_private_redis_before_the_workers_unless_one_is_configured():
    script = RUN_LOCAL.read_text()
    commands = _shell_commands(script)
    start = next(i for i, command in enumerate(commands) if command[0] == "private_redis_start")
    first_worker = commands.index(_celery_workers(commands)[0])
    assert start < first_worker, "the workers and the web server must see STEELQC_EVENTS_REDIS_URL"
    guard = script[:script.index("private_redis_start")].rsplit("\nif ", 1)[1]
    assert "command -v redis-server" in guard and '-z "${STEELQC_EVENTS_REDIS_URL:-}"' in guard
    assert ["source", "scripts/private-redis.sh"] in commands


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_private_redis_listens_on_a_private_socket_only_keeps_nothing_and_is_among_the_stopped(tmp_path):
    folder, out = tmp_path / "redis", tmp_path / "out"
    with out.open("w") as output:  # a file, not a pipe: the Redis left running holds it open
        shown = subprocess.run(
            ["bash", "-c", 'set -euo pipefail; pids=(); source scripts/private-redis.sh; private_redis_start "$1"; '
                           'echo "$STEELQC_EVENTS_REDIS_URL ${pids[*]}"', "-", str(folder)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, timeout=30)
    assert shown.returncode == 0, out.read_text()
    url, pid = out.read_text().split()
    try:
        assert url == f"unix://{folder}/redis.sock"
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.config_get("port") == {"port": "0"}  # no TCP port
        assert client.config_get("save") == {"save": ""} and client.config_get("appendonly") == {"appendonly": "no"}
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        client.close()
    finally:
        os.kill(int(pid), signal.SIGTERM)
