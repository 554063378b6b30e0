"""The production-shaped stack on loopback for benchmarks: a fresh PostgreSQL database, Redis,
gunicorn with production settings and Celery workers, and the API client the benchmarks use."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from benchmarks.api_client import ApiClient

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# Two benchmarks can share the machine when each gets its own port, database and Redis DB.
PORT = int(os.environ.get("STEELQC_BENCH_PORT", "8765"))
BENCH_DB = os.environ.get("STEELQC_BENCH_DB", "steelqc_bench")
BROKER = os.environ.get("STEELQC_BENCH_BROKER", "redis://127.0.0.1:6379/9")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the stack ------------------------------------------------------------------------------

def stack_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "STEELQC_", "CELERY_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="steelqc.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        STEELQC_BACKUP_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        CELERY_BROKER_URL=BROKER,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        MEDIA_ROOT=str(work / "media"),
        STATIC_ROOT=str(work / "static"),
        STEELQC_API_THROTTLE_UPLOAD="1000000/min",
        STEELQC_API_THROTTLE_READ="1000000/min",
        STEELQC_API_THROTTLE_WRITE="1000000/min",
        STEELQC_PENDING_REQUEUE_AFTER_S="600",
        PYTHONUNBUFFERED="1",
    )
    return env


def reset_services(work: Path) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    redis.Redis.from_url(BROKER).flushdb()
    shutil.rmtree(work / "media", ignore_errors=True)


@dataclass(frozen=True)
class Installation:
    env: dict
    token: str  # an API token of the benchmark's user, with the role asked for
    import_output: str = ""  # what import_dataset printed ("" without an import)
    import_s: float = 0.0  # how long the import took


def fresh_installation(work: Path, *, user: str, role: str, import_dir: Path | None = None,
                       model_dir: Path | None = None) -> Installation:
    """An empty installation of the stack, as an operator sets one up: the database and Redis DB
    reset, migrations, static files, optionally a dataset import (timed), an API token of
    ``user`` with ``role``, optionally ``model_dir`` registered and promoted. Nothing is started."""
    env = stack_env(work)
    reset_services(work)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    import_output, import_s = "", 0.0
    if import_dir is not None:
        began = time.monotonic()
        import_output = manage(env, "import_dataset", str(import_dir), "--source", "neu")
        import_s = time.monotonic() - began
        log(import_output.strip().splitlines()[-1])
    token = manage(env, "create_api_token", user, "--role", role, "--create").strip().split()[-1]
    if model_dir is not None:
        manage(env, "register_model", str(model_dir), "--promote")
    return Installation(env=env, token=token, import_output=import_output, import_s=import_s)


def manage(env: dict, *args: str) -> str:
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def start(env: dict, args: list[str], log_path: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# --- HTTP -----------------------------------------------------------------------------------

def Client(token: str) -> ApiClient:  # noqa: N802 (kept as the benchmarks' name for their client)
    """A benchmark client: one kept-alive connection, connection failures retried twice."""
    return ApiClient(PORT, token, timeout=120, keep_alive=True, retries=2)


def wait_until_up(token: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Client(token).request("GET", "/api/v1/classes/")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the web server did not come up")


def replace_doc_section(name: str, block: str) -> Path:
    """Write ``block`` into docs/benchmarks.md between this benchmark's markers (added if absent)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    section = f"{start}\n{block}\n{end}"
    if start in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)
    return doc


def start_web(env: dict, work: Path, *, workers: int | None = None) -> subprocess.Popen:
    """gunicorn with the one server configuration (gunicorn.conf.py), bound to loopback."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{PORT}"}
    if workers is not None:
        env["GUNICORN_WORKERS"] = str(workers)
    return start(env, [str(Path(PY).parent / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
                       "steelqc.wsgi:application"], work / "web.log")


def start_worker(env: dict, work: Path, *, queue: str, concurrency: int = 1, name: str = "") -> subprocess.Popen:
    name = name or queue
    return start(env, [PY, "-m", "celery", "-A", "steelqc", "worker", "-Q", queue, "--concurrency", str(concurrency),
                       "-n", f"{name}@%h", "--loglevel", "INFO"], work / f"worker-{name}.log")


def cpu_seconds(*, session_ids: list[int] = (), names: tuple[str, ...] = ()) -> float:
    """User+system CPU seconds used so far by the processes of the given sessions (a started
    stack process and its children) and by processes with the given command names."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        session = int(fields[3])
        if session in session_ids or name in names:
            total += int(fields[11]) + int(fields[12])
    return total / ticks
