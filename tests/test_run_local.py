"""Every way to run steelqc serves inference and training from separate worker processes, so an
upload (and its ?wait) is predicted while a model trains; read from the files, as nothing here
can start `make run` or compose."""

import re
import shlex
from pathlib import Path

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
