"""Processes the fault tests start, stop and kill: a private Redis, a web server, workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, WorkerProcess, _worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, *, up: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'}")


class RedisServer:
    """A real redis-server of the test's own, so restarting it disturbs nothing else."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, up=True)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        _wait_port(self.port, up=False)


class WebServer:
    def __init__(self, *, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "steelqc.wsgi:application", "--bind",
             f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4", "--worker-class", "gthread"],
            cwd=ROOT, env=self.env, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        _wait_port(self.port, up=True, timeout=60)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
def private_redis():
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


@pytest.fixture
def chaos_stack(private_redis, session_media_root, tmp_path, django_db_blocker):
    """gunicorn + one worker (with beat running the sweeper every few seconds) on a private Redis."""
    from inspections.ops.services.schedules import periodic_tasks_ensure

    with django_db_blocker.unblock():
        periodic_tasks_ensure(intervals={"STEELQC_SWEEP_INTERVAL_S": 5})
        env = {
            **_worker_env(session_media_root),
            "CELERY_BROKER_URL": private_redis.url,
            "CELERY_RESULT_BACKEND": "",
            "STEELQC_PENDING_REQUEUE_AFTER_S": "2",
        }
    web = WebServer(env=env, log_path=tmp_path / "web.log")
    worker = WorkerProcess(media=session_media_root, log_path=tmp_path / "worker.log", env=env, queues="inference",
                           extra_args=("--beat", "--schedule", str(tmp_path / "beat-schedule")))
    web.start()
    worker.start()
    yield {"web": web, "worker": worker, "redis": private_redis, "env": env}
    worker.stop()
    web.stop()
