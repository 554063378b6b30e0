"""Test-session plumbing: real PostgreSQL and Redis, real Celery worker processes, temp media."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.data import SPLIT_CYCLE, TINY_MODEL_CLASSES, tiny_dataset

ROOT = Path(__file__).resolve().parent.parent
SHARED_NEU = ROOT.parent / "shared" / "datasets" / "neu-cls"


def _require_services() -> None:
    import psycopg
    import redis
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"],
            password=db["PASSWORD"] or None, connect_timeout=5,
        ).close()
    except psycopg.OperationalError as error:
        pytest.exit(f"PostgreSQL is not reachable ({error}); run `make test`, which starts it.", returncode=3)
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as error:
        pytest.exit(f"Redis is not reachable at {settings.CELERY_BROKER_URL} ({error}); run `make test`.", returncode=3)


def pytest_sessionstart(session) -> None:
    import django

    django.setup()
    _require_services()


def pytest_collection_modifyitems(items) -> None:
    """Every transactional test without serialized_rollback runs with all apps available.

    Django then creates the migrations' rows (content types, permissions) when such a test starts
    and leaves them out of the flush after it, so every transactional test meets the same tables
    whatever ran before: the serialized_rollback ones load their saved rows into empty tables
    instead of failing on rows a plain test's flush re-created (which made them depend on order).
    """
    from django.apps import apps

    every_app = [config.name for config in apps.get_app_configs()]
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is None or not marker.kwargs.get("transaction") or marker.kwargs.get("serialized_rollback") \
                or marker.kwargs.get("available_apps") is not None:
            continue
        item.add_marker(pytest.mark.django_db(**{**marker.kwargs, "available_apps": every_app}), append=False)


@pytest.fixture(scope="session")
def session_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def media_root(settings, session_media_root) -> Path:
    """Every test stores files under a temporary folder shared with the worker process."""
    settings.MEDIA_ROOT = session_media_root
    return session_media_root


@pytest.fixture(autouse=True)
def _fresh_api_throttles() -> None:
    """Every test starts with empty API rate windows: none inherits another's requests (nor an
    earlier run's, whose user ids this run's test database hands out again)."""
    import redis
    from django.conf import settings
    from django.db import connection

    from inspections.api.throttling import KEY_PREFIX

    if settings.STEELQC_EVENTS_REDIS_URL:
        client = redis.Redis.from_url(settings.STEELQC_EVENTS_REDIS_URL)
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}{connection.settings_dict['NAME']}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="session")
def neu_dir() -> Path:
    if not SHARED_NEU.is_dir():
        pytest.skip(f"the NEU images are not at {SHARED_NEU}")
    return SHARED_NEU


def _worker_env(media: Path) -> dict[str, str]:
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="steelqc.settings.test",
        # pytest-django renamed the connection to the test database; the worker must use it too.
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{connection.settings_dict['NAME']}",
        MEDIA_ROOT=str(media),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_RESULT_BACKEND=settings.CELERY_RESULT_BACKEND or "",
        STEELQC_CACHE_DIR=str(settings.STEELQC_CACHE_DIR),
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerProcess:
    """A real `celery worker` child process consuming ``queues`` from Redis."""

    def __init__(self, *, media: Path, log_path: Path, queues: str, env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = (), name: str = "test"):
        self.media = media
        self.log_path = log_path
        self.env = env or {}
        self.queues = queues
        self.extra_args = extra_args
        self.node = f"{name}-{os.getpid()}-{id(self)}"
        self.process: subprocess.Popen | None = None
        self._log_start = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 90) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (`wait_ready` waits)."""
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "steelqc", "worker", "-Q", self.queues,
             "--pool", "prefork", "--concurrency", "1", "-n", f"{self.node}@%h", "--loglevel", "INFO",
             *self.extra_args],
            cwd=ROOT, env={**_worker_env(self.media), **self.env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited early; see {self.log_path}:\n{self.log_tail()}")
            # Celery logs "<node name> ready." once it consumes from the broker; the log may be
            # shared with another worker, so the line must carry this one's name.
            log = self.log_path.read_text(errors="replace")[self._log_start:]
            if any(f"{self.node}@" in line and " ready." in line for line in log.splitlines()):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not become ready within {timeout}s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.running:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class CeleryWorkers:
    """The session's workers as production runs them: one process each for the inference, line
    (classify/) and training queues, so a training run never holds up a prediction and line
    frames never wait behind upload batches (compose's inference-, line- and training-worker,
    `make run`'s three workers).

    ``inference``, ``line`` and ``training`` are the processes, for a test about one of them. The
    methods here act on all, and all write one log, as they share `make run`'s terminal.
    """

    def __init__(self, *, media: Path, log_path: Path):
        from inspections.task_names import INFERENCE_QUEUE, LINE_QUEUE, TRAINING_QUEUE

        self.log_path = log_path
        self.inference = WorkerProcess(media=media, log_path=log_path, queues=INFERENCE_QUEUE, name="inference")
        self.line = WorkerProcess(media=media, log_path=log_path, queues=LINE_QUEUE, name="line")
        self.training = WorkerProcess(media=media, log_path=log_path, queues=TRAINING_QUEUE, name="training")
        self.processes = (self.inference, self.line, self.training)

    def start(self, timeout: float = 90) -> None:
        """Start each worker that is not running, side by side; return once all consume."""
        stopped = [worker for worker in self.processes if not worker.running]
        for worker in stopped:
            worker.launch()
        for worker in stopped:
            worker.wait_ready(timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        for worker in self.processes:
            worker.kill(sig)

    def stop(self) -> None:
        for worker in self.processes:
            worker.stop()

    def log_tail(self, lines: int = 40) -> str:
        return self.inference.log_tail(lines)


def _flush_broker() -> None:
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, session_media_root, tmp_path_factory) -> CeleryWorkers:
    """The real inference and training workers, started once for the tests that need them (mark
    them `worker`)."""
    _flush_broker()
    workers = CeleryWorkers(media=session_media_root, log_path=tmp_path_factory.mktemp("worker") / "worker.log")
    with django_db_blocker.unblock():
        workers.start()
    yield workers
    workers.stop()


# serving_int8 off: the int8 copy's own tests (tests/mlcore/test_serving_int8.py) decide it on
# fixed images; whether it passes on a tiny model's six validation images is not what these test.
TINY_TRAINING_PARAMS = dict(backbone="efficientnet_lite0", input_size=64, augmented_views=1, head_epochs=30,
                            head_patience=10, finetune="off", batch_size=8, serving_int8=False)


def train_tiny_model(out_dir: Path, *, seed: int = 0, swap_labels: bool = False, serving_export: bool = True) -> Path:
    """A small real model (pretrained Lite0 at 64 px) for pipeline tests: seconds, not minutes.

    ``swap_labels`` trains on every label swapped (stripes called inclusion, spots crazing): a
    model that is surely worse, whatever the seed (a random shuffle can keep most labels right,
    and the texture features learn through 30 % label noise). ``serving_export=False`` leaves out
    the TFLite copy (~20 s of a ~45 s run) for tests that do not serve the model.
    """
    from django.conf import settings

    from mlcore.io import Sample
    from mlcore.training import TrainConfig, train

    rows = tiny_dataset(out_dir.parent / f"{out_dir.name}-data", seed=seed)
    labels = [label for _, label, _ in rows]
    if swap_labels:
        swapped = dict(zip(TINY_MODEL_CLASSES, reversed(TINY_MODEL_CLASSES)))
        labels = [swapped[label] for label in labels]
    samples = [Sample(path=str(path), label=label, split=split) for (path, _, split), label in zip(rows, labels)]
    config = TrainConfig(**TINY_TRAINING_PARAMS, seed=seed, weights="imagenet", cache_dir=settings.STEELQC_CACHE_DIR,
                         serving_export=serving_export)
    train(config, samples, out_dir=out_dir)
    return out_dir


BOXED_MODEL_CLASSES = ("bright", "dark")


def boxed_frame(rng, size: int = 48):
    """(uint8 frame, its boxes as (label, x0, y0, x1, y1) fractions): bright and dark rectangles on
    a noisy grey surface, the larger one the frame's main defect."""
    import numpy as np

    image = np.clip(rng.normal(120, 10, (size, size)), 0, 255)
    boxes = []
    for label in BOXED_MODEL_CLASSES:
        if rng.random() < 0.8 or not boxes:
            w, h = rng.uniform(0.2, 0.4, 2)
            x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            boxes.append((label, float(x0), float(y0), float(x0 + w), float(y0 + h)))
            image[int(y0 * size):int((y0 + h) * size), int(x0 * size):int((x0 + w) * size)] = \
                250 if label == "bright" else 5
    return image.astype(np.uint8), boxes


def train_boxed_model(out_dir: Path, *, images: int = 50, seed: int = 3) -> tuple[Path, list]:
    """A small model with a detection head (pretrained Lite0 at 64 px): (artefact, its samples)."""
    import numpy as np
    from django.conf import settings
    from PIL import Image

    from mlcore.io import Sample
    from mlcore.training import TrainConfig, train

    rng = np.random.default_rng(seed)
    data = out_dir.parent / f"{out_dir.name}-data"
    data.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(images):
        frame, boxes = boxed_frame(rng)
        path = data / f"{i}.png"
        Image.fromarray(frame).save(path)
        label = max(boxes, key=lambda b: (b[3] - b[1]) * (b[4] - b[2]))[0]
        samples.append(Sample(path=str(path), label=label, split=SPLIT_CYCLE[i % 5], boxes=tuple(boxes)))
    params = {**TINY_TRAINING_PARAMS, "suspect_folds": 0, "detection": "auto", "detection_min_images": 20,
              "detection_epochs": 30, "detection_learning_rate": 3e-3}
    train(TrainConfig(**params, seed=seed, weights="imagenet", cache_dir=settings.STEELQC_CACHE_DIR), samples,
          out_dir=out_dir)
    return out_dir, samples


@pytest.fixture(scope="session")
def boxed_model(tmp_path_factory) -> tuple[Path, list]:
    """(artefact folder, samples) of one small model that also finds defect boxes, shared by the session."""
    return train_boxed_model(tmp_path_factory.mktemp("boxed-model") / "model")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Two different small trained artefacts (for promotion and hot-swap tests): the first served
    by its verified TFLite copy, the second by Keras (trained without the copy), so the worker
    tests meet both runtimes and a swap between them."""
    root = tmp_path_factory.mktemp("tiny-models")
    return train_tiny_model(root / "first", seed=1), train_tiny_model(root / "second", seed=2, serving_export=False)


# An anomaly model in seconds: 64 px input, and a 20 % false-alarm rate, whose threshold 4 held-out
# good images can set (1 % needs 99); 14 distinct good images at the least.
TINY_ANOMALY_PARAMS = dict(input_size=64, false_alarm_rate=0.2, batch_size=16)


def train_tiny_anomaly_model(out_dir: Path, *, good: int = 30, seed: int = 0) -> Path:
    """A small real anomaly model (pretrained Lite0 at 64 px) of ``good`` striped surfaces."""
    import numpy as np
    from django.conf import settings

    from mlcore.anomaly import AnomalyConfig, train_anomaly_model
    from tests.data import ANOMALY_GOOD_PATTERN, surface

    rng = np.random.default_rng(seed)
    images = [surface(ANOMALY_GOOD_PATTERN, rng) for _ in range(good)]
    train_anomaly_model(AnomalyConfig(**TINY_ANOMALY_PARAMS, seed=seed, cache_dir=settings.STEELQC_CACHE_DIR), images,
                        out_dir=out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_anomaly_model_dir(tmp_path_factory) -> Path:
    """One small anomaly artefact (good = striped surfaces), shared by the session."""
    return train_tiny_anomaly_model(tmp_path_factory.mktemp("tiny-anomaly") / "model")


def wait_for(condition, *, timeout: float = 120, interval: float = 0.1):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def no_queue(monkeypatch) -> list[tuple[str, dict, str]]:
    """For in-process service tests: nothing is sent to a broker (uploads, promotions, runs).

    Returns the messages that would have been sent, as (task name, kwargs, queue)."""
    sent: list[tuple[str, dict, str]] = []
    monkeypatch.setattr("inspections.queueing._send", lambda name, *, kwargs, queue: sent.append((name, kwargs, queue)))
    return sent
