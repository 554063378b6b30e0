"""How a ``classify/`` request's frames reach the line worker and how its answer comes back.

Two transports hold the same entries under the same names, so ``classify.py`` does not know which
one it has (``classify_transport``):

- **Redis**, whenever ``STEELQC_EVENTS_REDIS_URL`` is set (production, CI, and ``make run`` where
  ``redis-server`` is installed: it starts a private one). Frames are short-lived keys, the answer
  is published on a channel the web process subscribed to before queueing, idempotency claims
  and stored answers are keys with a TTL. Any number of web and worker processes on any hosts.
- **Files** under ``VAR_DIR/classify``, when no Redis is configured: the embedded installation,
  whose filesystem broker already keeps the web server and the workers on one machine sharing
  ``var/``. One file per entry, named by the sha256 of the entry's name, its modification time
  set to its expiry. A file is written whole under a temporary name and then renamed (or linked,
  for "only if absent") into place, so nobody reads half an entry; a frame is taken by renaming
  it away first, so only one worker gets it. The web process looks for the answer's file every
  ``FILE_POLL_S`` (a stat per look). Expired entries are removed when read and by a sweep at
  most every ``SWEEP_EVERY_S`` per process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings

from inspections.review.prediction_events import events_client, subscribed

REDIS = "redis"
FILES = "files"
FILE_POLL_S = 0.02
SWEEP_EVERY_S = 30.0
TEMPORARY_PREFIX = ".part-"
TEMPORARY_KEEP_S = 300  # a temporary file older than this was left by a process that died mid-write
ANSWER_KEEP_S = 60  # an answer's file outlives its waiter this long, for a retry waiting on the same request

_last_sweep: dict[Path, float] = {}
_sweep_lock = threading.Lock()


def classify_transport_kind() -> str:
    """``redis`` or ``files``: which transport ``classify_transport`` hands out here."""
    return REDIS if settings.STEELQC_EVENTS_REDIS_URL else FILES


def classify_files_directory() -> Path:
    return Path(settings.VAR_DIR) / "classify"


def classify_transport():
    """The transport of this installation: Redis when configured, else files under ``var/``."""
    client = events_client()
    if client is not None:
        return RedisTransport(client)
    return FileTransport(classify_files_directory())


class RedisTransport:
    kind = REDIS

    def __init__(self, client) -> None:
        self._client = client

    def frames_put(self, frames: dict[str, bytes], *, ttl_s: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, content in frames.items():
            pipe.set(key, content, ex=ttl_s)
        pipe.execute()

    def frames_take(self, keys: list[str]) -> list[bytes | None]:
        """Each frame's bytes (None once expired), removed as they are read."""
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        pipe.delete(*keys)
        return pipe.execute()[:len(keys)]

    def frames_discard(self, keys: list[str]) -> None:
        self._client.delete(*keys)

    @contextmanager
    def answer_wait(self, channel: str) -> Iterator[_RedisAnswerWait]:
        """Listen for the answer on ``channel`` from now on (SubscriptionBroken when Redis refuses)."""
        with subscribed([channel]) as subscription:
            yield _RedisAnswerWait(subscription)

    def answer_send(self, channel: str, answer: str, *, stored_name: str = "", stored_ttl_s: int = 0) -> None:
        if stored_name:  # first, so a retry that starts listening after the answer finds it stored
            self._client.set(stored_name, answer, ex=stored_ttl_s)
        self._client.publish(channel, answer)

    def value_get(self, name: str) -> bytes | None:
        return self._client.get(name)

    def value_add(self, name: str, value: str, *, ttl_s: int) -> bool:
        """Set ``name`` only if it is absent; whether it was."""
        return bool(self._client.set(name, value, nx=True, ex=ttl_s))

    def value_set(self, name: str, value: str, *, ttl_s: int) -> None:
        self._client.set(name, value, ex=ttl_s)

    def value_delete(self, name: str) -> None:
        self._client.delete(name)


class _RedisAnswerWait:
    def __init__(self, subscription) -> None:
        self._subscription = subscription

    def next_answer(self, *, deadline: float) -> bytes | None:
        """The answer, or None once ``deadline`` (time.monotonic) passed; SubscriptionBroken when
        the connection breaks off."""
        message = self._subscription.next_message(deadline=deadline)
        return None if message is None else message[1]


class FileTransport:
    kind = FILES

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sweep_now_and_then()

    def frames_put(self, frames: dict[str, bytes], *, ttl_s: int) -> None:
        for key, content in frames.items():
            os.replace(self._written(content, ttl_s), self._path(key))

    def frames_take(self, keys: list[str]) -> list[bytes | None]:
        return [self._take(key) for key in keys]

    def frames_discard(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    @contextmanager
    def answer_wait(self, channel: str) -> Iterator[_FileAnswerWait]:
        # The answer's file stays until it expires, so one written before the first look is found.
        yield _FileAnswerWait(self, channel)

    def answer_send(self, channel: str, answer: str, *, stored_name: str = "", stored_ttl_s: int = 0) -> None:
        if stored_name:
            self.value_set(stored_name, answer, ttl_s=stored_ttl_s)
        # Kept a while rather than removed when read: a retry waiting for the same request reads it too.
        self.value_set(channel, answer, ttl_s=ANSWER_KEEP_S)

    def value_get(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as handle:
                if os.fstat(handle.fileno()).st_mtime < time.time():
                    return None
                return handle.read()
        except FileNotFoundError:
            return None

    def value_add(self, name: str, value: str, *, ttl_s: int) -> bool:
        path = self._path(name)
        written = self._written(value.encode(), ttl_s)
        try:
            self._remove_if_expired(path)
            os.link(written, path)  # refused when the name exists: the first writer wins
            return True
        except FileExistsError:
            return False
        finally:
            written.unlink(missing_ok=True)

    def value_set(self, name: str, value: str, *, ttl_s: int) -> None:
        os.replace(self._written(value.encode(), ttl_s), self._path(name))

    def value_delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def _path(self, name: str) -> Path:
        # Names hold the database name and user input (a key's digest); hashed, any name is a safe file name.
        return self.directory / hashlib.sha256(name.encode()).hexdigest()

    def _temporary(self) -> Path:
        return self.directory / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"

    def _written(self, content: bytes, ttl_s: float) -> Path:
        """A temporary file holding ``content`` that expires in ``ttl_s``, for the caller to move into place."""
        handle, name = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=self.directory)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            expires = time.time() + ttl_s
            os.utime(name, (expires, expires))
        except BaseException:
            os.unlink(name)
            raise
        return Path(name)

    def _take(self, name: str) -> bytes | None:
        taken = self._temporary()
        try:
            os.rename(self._path(name), taken)  # atomic: of two takers, one finds nothing
        except FileNotFoundError:
            return None
        try:
            with open(taken, "rb") as handle:
                return None if os.fstat(handle.fileno()).st_mtime < time.time() else handle.read()
        finally:
            taken.unlink(missing_ok=True)

    def _remove_if_expired(self, path: Path) -> None:
        try:
            if path.stat().st_mtime >= time.time():
                return
            moved = self._temporary()
            os.rename(path, moved)
        except FileNotFoundError:
            return
        try:
            if moved.stat().st_mtime >= time.time():  # a fresh entry took the place meanwhile: put it back
                with suppress(FileExistsError):
                    os.link(moved, path)
        finally:
            moved.unlink(missing_ok=True)

    def _sweep_now_and_then(self) -> None:
        now = time.time()
        with _sweep_lock:
            if now - _last_sweep.get(self.directory, 0.0) < SWEEP_EVERY_S:
                return
            _last_sweep[self.directory] = now
        for entry in os.scandir(self.directory):
            with suppress(FileNotFoundError):
                temporary = entry.name.startswith(TEMPORARY_PREFIX)
                if entry.stat().st_mtime < (now - TEMPORARY_KEEP_S if temporary else now):
                    os.unlink(entry.path)


class _FileAnswerWait:
    def __init__(self, transport: FileTransport, channel: str) -> None:
        self._transport = transport
        self._channel = channel

    def next_answer(self, *, deadline: float) -> bytes | None:
        while True:
            answer = self._transport.value_get(self._channel)
            if answer is not None:
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            time.sleep(min(FILE_POLL_S, remaining))
