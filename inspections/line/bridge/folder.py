"""The folder inlet: a camera (or its frame grabber) drops image files into a folder, often a
network share; each new file is classified and moved to ``done/``, or to ``failed/`` with a
``<name>.reason.txt`` saying why.

The folder is listed every ``poll_s`` (polling, so mounted shares work, where inotify sees
nothing). A file is taken once complete: its size and modification time stayed the same for
``settle_s`` (0: at first sight, for writers that rename a finished temporary file into place);
names that look temporary (``.name``, ``*.tmp``, ``*.part``, ...) are never taken, so a writer
that renames into place is never read half-written. Subfolders are left alone.

A restart never processes a file twice and never loses one: a file is recorded as taken (with the
sha256 of its bytes, in a batch) before it is sent, its result is recorded before it is moved,
and the batch's idempotency key makes a repeat of an interrupted request return its first answer.
At start, and whenever frames are waiting in the record, those batches are finished first. A
file whose bytes were processed before (the same bytes again) goes to ``done/`` without a second
result. Anything that is not a readable, valid image file -- a link, a pipe, a file too large,
undecodable or unreadable -- goes to ``failed/`` and the inlet carries on.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import close_old_connections, connection

from inspections.catalog.services.image_validation import upload_size_limit
from inspections.catalog.services.images import upload_display_name
from inspections.errors import ApplicationError
from inspections.line.bridge.frames import (
    Classify,
    batch_send,
    frame_checked,
    refusal_reason,
)
from inspections.line.bridge.stats import SourceStats
from inspections.line.selectors import bridge_taken_batches
from inspections.line.services.bridge import (
    FrameOutcome,
    bridge_frames_claim,
    bridge_frames_finish,
    bridge_frames_rebatch,
)
from inspections.line.services.classify import ClassifyFile

logger = logging.getLogger("inspections.line.bridge")

DONE, FAILED = "done", "failed"
TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".filepart", ".crdownload", ".writing", ".inprogress", "~")
# An empty file may be one being created: it is given at least this long before it is refused.
EMPTY_SETTLE_S = 2.0
# A file that could not be moved is looked at again after this long (not at every poll).
STUCK_RETRY_S = 60.0


class Refused(Exception):
    """A file that is not a readable image file; the message is its reason."""


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class FolderInlet:
    def __init__(self, *, source: str, folder: Path, classify: Classify, stats: SourceStats,
                 on_results: Callable[[str, list[dict]], None] = lambda source, results: None,
                 publish: bool = False, may_take: Callable[[], bool] = lambda: True, poll_s: float = 0.5,
                 settle_s: float = 1.0, batch: int = 8, stop: threading.Event | None = None):
        self.source, self.folder, self.classify, self.stats = source, Path(folder), classify, stats
        self.on_results, self.publish, self.may_take = on_results, publish, may_take
        self.poll_s, self.settle_s, self.batch = poll_s, settle_s, batch
        self.stop = stop or threading.Event()
        self._seen: dict[str, _Seen] = {}
        self._stuck: dict[str, float] = {}
        for name in (DONE, FAILED):
            (self.folder / name).mkdir(exist_ok=True)

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    close_old_connections()
                    busy = self.step()
                except Exception:
                    logger.exception("line bridge %s: the folder inlet failed; trying again in 5 s", self.source)
                    self.stop.wait(5)
                    continue
                if not busy:
                    self.stop.wait(self.poll_s)
        finally:
            connection.close()

    def step(self) -> bool:
        """One piece of work: finish a batch waiting in the record, else take the files that are
        ready (up to a batch). False when there was nothing to do."""
        waiting = bridge_taken_batches(source=self.source)
        if waiting:
            self._resume(*waiting[0])
            return True
        ready = self.ready_names()
        if not ready or not self.may_take():
            return False
        self._take(ready)
        return True

    # --- which files are ready ------------------------------------------------------------

    def ready_names(self) -> list[str]:
        """Names of the files that may be taken now, oldest first: complete regular files, and at
        once anything that is not a regular file (to be refused)."""
        now = time.monotonic()
        ready: list[tuple[int, str]] = []
        present = set()
        try:
            entries = list(os.scandir(self.folder))
        except OSError as error:
            logger.warning("line bridge %s: cannot list %s: %s", self.source, self.folder, error)
            return []
        for entry in entries:
            name = entry.name
            if is_temporary(name) or self._stuck.get(name, 0) > now:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    continue
                facts = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            present.add(name)
            if not stat.S_ISREG(facts.st_mode):
                ready.append((facts.st_mtime_ns, name))
                continue
            seen = self._seen.get(name)
            if seen is None or (seen.size, seen.mtime_ns) != (facts.st_size, facts.st_mtime_ns):
                self._seen[name] = seen = _Seen(facts.st_size, facts.st_mtime_ns, now)
            settle = max(self.settle_s, EMPTY_SETTLE_S) if facts.st_size == 0 else self.settle_s
            if settle == 0 or now - seen.since >= settle:
                ready.append((facts.st_mtime_ns, name))
        for name in set(self._seen) - present:
            del self._seen[name]
        for name in [name for name, until in self._stuck.items() if until <= now]:
            del self._stuck[name]
        return [name for _, name in sorted(ready)]

    def _read(self, name: str) -> bytes:
        """The file's bytes; Refused when it is not a regular file, too large or unreadable."""
        limit = upload_size_limit()
        try:
            descriptor = os.open(self.folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise Refused("not_a_file: a symbolic link; links are not followed.") from None
            if isinstance(error, FileNotFoundError):
                raise
            raise Refused(f"unreadable: {error.strerror or error}.") from None
        try:
            facts = os.fstat(descriptor)
            if not stat.S_ISREG(facts.st_mode):
                raise Refused("not_a_file: not a regular file (a pipe, socket or device).")
            if facts.st_size > limit:
                raise Refused(f"file_too_large: the file is larger than {limit} bytes.")
            chunks, size = [], 0
            while size <= limit:
                try:
                    chunk = os.read(descriptor, min(1 << 20, limit + 1 - size))
                except OSError as error:
                    raise Refused(f"unreadable: {error.strerror or error}.") from None
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                raise Refused(f"file_too_large: the file is larger than {limit} bytes.")
            return b"".join(chunks)
        finally:
            os.close(descriptor)

    # --- taking files ---------------------------------------------------------------------

    def _take(self, names: list[str]) -> None:
        files: list[tuple[str, ClassifyFile]] = []
        for name in names:
            if len(files) >= self.batch:
                break
            try:
                files.append((name, frame_checked(name=name, content=self._read(name))))
            except FileNotFoundError:
                self._seen.pop(name, None)
            except Refused as refusal:
                self._fail_file(name, str(refusal))
            except ApplicationError as error:
                self._fail_file(name, refusal_reason(error))
        if not files:
            return
        batch, states = bridge_frames_claim(source=self.source, frames=[(name, item.sha256) for name, item in files])
        claimed, seen_now = [], set()
        for name, item in files:
            state, _ = states[item.sha256]
            if state == "claimed" and item.sha256 not in seen_now:
                claimed.append((name, item))
                seen_now.add(item.sha256)
            elif state == "done":
                logger.info("line bridge %s: %s holds the bytes of a frame processed before; moved to done/ "
                            "without a second result", self.source, name)
                self.stats.add(duplicates=1)
                self._move(name, DONE)
            # else: waiting in an earlier batch (or twice in this one): left for when that is done.
        if claimed:
            self.stats.add(taken=len(claimed))
            self._send(batch, claimed)

    def _resume(self, batch: str, rows: list) -> None:
        """Finish a batch recorded as taken: after a restart, or frames to send again."""
        logger.info("line bridge %s: finishing %d frame(s) taken before (batch %s)", self.source, len(rows), batch)
        files, gone = [], []
        for row in rows:
            try:
                content = self._read(row.name)
            except (FileNotFoundError, Refused):
                content = None
            item = ClassifyFile(filename=upload_display_name(row.name), content=content or b"", sha256=row.sha256)
            if content is None or hashlib.sha256(content).hexdigest() != row.sha256:
                gone.append(FrameOutcome(sha256=row.sha256, reason="vanished: the file was removed or changed "
                                                                   "after it was taken."))
            else:
                files.append((row.name, item))
        if gone:
            logger.warning("line bridge %s: %d taken file(s) vanished or changed before their answer", self.source,
                           len(gone))
            bridge_frames_finish(source=self.source, outcomes=gone, publish=False)
            self.stats.add(failed=len(gone))
            if files:  # the request under the old key named other files: the rest go in a new one
                bridge_frames_rebatch(source=self.source, shas=[item.sha256 for _, item in files])
            return
        self._send(batch, files)

    def _send(self, batch: str, files: list[tuple[str, ClassifyFile]]) -> None:
        answer = batch_send(source=self.source, batch=batch, files=[item for _, item in files],
                            classify=self.classify, publish=self.publish)
        if answer.stopped:
            return
        for name, item in files:
            if item.sha256 in answer.results:
                self._move(name, DONE)
            elif item.sha256 in answer.failures:
                self._fail_file(name, answer.failures[item.sha256])
        self.stats.results(answer.results.values())
        if answer.results:
            self.on_results(self.source, list(answer.results.values()))
        if answer.again:
            logger.info("line bridge %s: %d frame(s) to send again (expired before a worker took them, or no model "
                        "was active)", self.source, len(answer.again))
            self.stop.wait(2)

    # --- moving files ---------------------------------------------------------------------

    def _fail_file(self, name: str, reason: str) -> None:
        logger.info("line bridge %s: %s refused: %s", self.source, name, reason)
        self.stats.add(failed=1)
        moved = self._move(name, FAILED)
        if moved is not None:
            try:
                (moved.parent / f"{moved.name}.reason.txt").write_text(reason.strip() + "\n")
            except OSError as error:
                logger.warning("line bridge %s: the reason for %s could not be written: %s", self.source, name, error)

    def _move(self, name: str, folder: str) -> Path | None:
        """Move ``name`` into ``folder`` (under a free name); None when it could not be moved."""
        self._seen.pop(name, None)
        target = self.folder / folder / name
        stem, suffix = os.path.splitext(name)
        counter = 1
        while os.path.lexists(target) or os.path.lexists(f"{target}.reason.txt"):
            target = self.folder / folder / f"{stem}.{counter}{suffix}"
            counter += 1
        try:
            os.rename(self.folder / name, target)
        except FileNotFoundError:
            return None
        except OSError as error:
            logger.error("line bridge %s: %s could not be moved to %s/: %s (looked at again in %g s)", self.source,
                         name, folder, error, STUCK_RETRY_S)
            self._stuck[name] = time.monotonic() + STUCK_RETRY_S
            return None
        return target
