"""What both inlets share: checking a frame as ``classify/`` checks a file, sending a batch through
``classify_request`` (the service behind ``classify/``) until it is answered, and reading the
answer as one outcome per frame."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from django.db import close_old_connections
from django.utils import timezone

from inspections.catalog.services import image_validation
from inspections.catalog.services.images import upload_display_name
from inspections.errors import ApplicationError, Conflict, Unavailable
from inspections.line.services.bridge import (
    FrameOutcome,
    bridge_frames_finish,
    bridge_frames_rebatch,
    classify_key,
    result_payload,
)
from inspections.line.services.classify import ClassifyFile, classify_request

logger = logging.getLogger("inspections.line.bridge")

# Answers that mean "send it again later", not "this file is bad".
RETRY_CODES = frozenset({"classify_expired", "no_active_model"})


class Classify(Protocol):
    """Classifies ``files`` for ``source`` under the idempotency ``key``: one answer per file in
    order (``{filename, prediction, kept, image_id}`` or ``{filename, error}``), or None once the
    bridge is stopping."""

    def __call__(self, files: list[ClassifyFile], *, source: str, key: str) -> list[dict] | None: ...


def frame_checked(*, name: str, content: bytes) -> ClassifyFile:
    """``content`` as ``classify/`` accepts a file (size, decoding, pixels), or ApplicationError."""
    facts = image_validation.image_facts_from_bytes(content)
    return ClassifyFile(filename=upload_display_name(name) or facts.sha256[:16], content=content, sha256=facts.sha256)


@dataclass
class ServiceClassifier:
    """The real classification: ``classify_request`` (queued to the line worker, answered through
    the classify transport), asked again under the same key until it answers. The key makes a
    repeat return the first request's answer, so a slow worker or a restart counts nothing twice."""

    timeout_s: float
    stop: threading.Event = field(default_factory=threading.Event)

    def __call__(self, files: list[ClassifyFile], *, source: str, key: str) -> list[dict] | None:
        pause = 0.0
        while not self.stop.wait(pause):
            close_old_connections()
            try:
                answers = classify_request(files=files, source=source, external_id="", uploaded_by=None,
                                           timeout_s=self.timeout_s, idempotency_key=key)
            except Conflict as error:
                if error.code != "no_active_model":
                    raise
                logger.warning("line bridge %s: no model version is active; waiting", source)
                pause = 10.0
                continue
            except Unavailable:
                logger.warning("line bridge %s: the line queue is not reachable; retrying", source)
                pause = 2.0
                continue
            if answers is not None:
                return answers
            logger.info("line bridge %s: no answer within %g s; asking again under the same key", source,
                        self.timeout_s)
            pause = 0.0
        return None


def outcomes_read(files: list[ClassifyFile], answers: list[dict], *, at: datetime) -> tuple[list[FrameOutcome],
                                                                                           list[str]]:
    """(outcomes of the files answered for good, sha256 of those to send again)."""
    outcomes, again = [], []
    for item, answer in zip(files, answers):
        error = answer.get("error")
        if error is None:
            outcomes.append(FrameOutcome(sha256=item.sha256, result=result_payload(
                filename=item.filename, sha256=item.sha256, answer=answer, at=at)))
        elif error.get("code") in RETRY_CODES:
            again.append(item.sha256)
        else:
            outcomes.append(FrameOutcome(sha256=item.sha256, reason=f"{error.get('code')}: {error.get('message')}"))
    return outcomes, again


def refusal_reason(error: ApplicationError) -> str:
    return f"{error.code}: {error.message}"


@dataclass
class BatchAnswer:
    """What became of a batch: results recorded (sha256 -> result), failures (sha256 -> reason),
    and the frames to send again (``again``, under a new batch); ``stopped`` when the bridge
    stopped before the answer (the batch is sent again at the next start)."""

    results: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    again: list[str] = field(default_factory=list)
    again_batch: str = ""
    stopped: bool = False


def batch_send(*, source: str, batch: str, files: list[ClassifyFile], classify: Classify,
               publish: bool) -> BatchAnswer:
    """Classify a taken batch under its key and record the outcome (with its MQTT messages when
    ``publish``) in one transaction; frames to send again go to a new batch."""
    answers = classify(files, source=source, key=classify_key(source=source, batch=batch))
    if answers is None:
        return BatchAnswer(stopped=True)
    outcomes, again = outcomes_read(files, answers, at=timezone.now())
    again_batch = bridge_frames_rebatch(source=source, shas=again) if again else ""
    recorded = {result["sha256"]: result for result in bridge_frames_finish(source=source, outcomes=outcomes,
                                                                             publish=publish)}
    failures = {outcome.sha256: outcome.reason for outcome in outcomes if outcome.result is None}
    return BatchAnswer(results=recorded, failures=failures, again=again, again_batch=again_batch)
