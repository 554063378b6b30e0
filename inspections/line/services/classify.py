"""``classify/``: predict line images without storing them first; keep only what the retention
policy keeps.

The web process validates the files exactly as uploads are validated, puts each file's bytes
under a short-lived key (TTL: the request's deadline plus ``BYTES_GRACE_S``) and queues one
message holding only the keys (``docs/benchmarks.md``: smaller broker messages than carrying the
bytes base64-encoded in JSON). It listens for the request's answer *before* queueing, so the
answer cannot slip past it, and sleeps until the answer or its deadline. The keys, answers and
claims live in Redis, or in files under ``var/`` on an installation without Redis
(``classify_transport.py``).

The worker takes (and deletes) the bytes, predicts the batch with the serving model, asks the
retention policy, stores the kept images exactly as an upload would (file, ``InspectionImage``,
``Prediction``; status predicted, so the review queue has them), adds the batch to the line
counts, and publishes the answer. An image that is not kept leaves nothing but the counts.

The requests go to their own queue (``line``) served by their own worker process, so a frame
never waits behind a batch of uploads being predicted.

A request past its deadline answers 504 and the client sends again; the same frames must not be
counted twice. A request may carry an idempotency key (``Idempotency-Key``): the first request
with a key claims it for ``STEELQC_CLASSIFY_IDEMPOTENCY_TTL_S``; its worker stores the
answer under the request, so a retry with the same key and the same files gets that answer (or
waits for it) instead of classifying again. A retry that finds the earlier request lost (its
images expired and no answer came within the task's time limit) takes the key over. Without a
key, a request whose deadline has passed before a worker took it is dropped unclassified and
counted as ``dropped`` in the line counts; one that a worker started in time is finished and
counted once. A worker killed mid-request loses that request (at most once) -- never a hang.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from inspections.catalog.models import ImageStatus, InspectionImage
from inspections.catalog.services.images import image_upload, upload_display_name
from inspections.errors import ApplicationError, Conflict, Unavailable, error_body
from inspections.line.services.retention import is_kept, retention_decide
from inspections.line.services.stats import Seen, line_drops_record, line_minute_record
from inspections.queueing import classify_enqueue
from inspections.registry.models import ModelVersion, ModelVersionStatus
from inspections.registry.services.classifiers import pixels_from_bytes
from inspections.review.models import Prediction
from inspections.line.services.classify_transport import classify_transport
from inspections.review.prediction_events import SubscriptionBroken, images_done_announce
from inspections.review.services.boxes import prediction_boxes_marked
from inspections.review.services.latest_prediction import images_latest_prediction_refresh

logger = logging.getLogger(__name__)

BYTES_PREFIX = "steelqc:classify-bytes:"
ANSWER_PREFIX = "steelqc:classify-answer:"
STORED_ANSWER_PREFIX = "steelqc:classify-stored:"
KEY_PREFIX = "steelqc:classify-key:"
BYTES_GRACE_S = 60
IDEMPOTENCY_KEY_MAX_LENGTH = 200


@dataclass(frozen=True)
class ClassifyFile:
    filename: str
    content: bytes
    sha256: str


def _names(request_id: str) -> tuple[str, str]:
    base = f"{connection.settings_dict['NAME']}:{request_id}"
    return BYTES_PREFIX + base + ":", ANSWER_PREFIX + base


def _stored_answer_name(request_id: str) -> str:
    return f"{STORED_ANSWER_PREFIX}{connection.settings_dict['NAME']}:{request_id}"


def _claim_name(user_id: int | None, idempotency_key: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"{KEY_PREFIX}{connection.settings_dict['NAME']}:{user_id or 0}:{digest}"


def _fingerprint(files: list[ClassifyFile], source: str, external_id: str) -> str:
    return hashlib.sha256(json.dumps([source, external_id, [item.sha256 for item in files]]).encode()).hexdigest()


def idempotency_key_checked(value: str) -> str:
    """``value`` (an ``Idempotency-Key`` header) if usable: 1 to 200 printable ASCII characters."""
    if not (0 < len(value) <= IDEMPOTENCY_KEY_MAX_LENGTH) or not all(32 < ord(char) < 127 for char in value):
        raise ApplicationError(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII "
                               "characters without spaces (a UUID is a good one).", code="invalid_idempotency_key")
    return value


def classify_request(*, files: list[ClassifyFile], source: str, external_id: str, uploaded_by,
                     timeout_s: float, idempotency_key: str = "") -> list[dict] | None:
    """Queue ``files`` for classification and wait for the answer: one result per file in order,
    or None when ``timeout_s`` passed first. With ``idempotency_key``, a request already made with
    it (by the same user, with the same files) is answered from its result instead."""
    deadline = time.monotonic() + timeout_s
    if not ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exists():
        # 409 as elsewhere (images/{id}/similar/): the installation's state, not a server fault. An
        # active anomaly model alone answers (a score, no class): a line with only good images.
        raise Conflict("No model version is active; nothing can be classified yet.",
                               code="no_active_model")
    user_id = uploaded_by.pk if getattr(uploaded_by, "is_authenticated", False) else None
    request_id = uuid.uuid4().hex
    try:
        transport = classify_transport()
    except OSError:
        logger.warning("classify: the transport's folder is not usable", exc_info=True)
        raise Unavailable("The inference queue is not reachable; retry shortly.", code="queue_unavailable") from None
    if idempotency_key:
        earlier = _claim(transport, name=_claim_name(user_id, idempotency_key), request_id=request_id,
                         fingerprint=_fingerprint(files, source, external_id), timeout_s=timeout_s)
        if earlier is not None:
            return _earlier_answer(transport, request_id=earlier, deadline=deadline)
    key_prefix, answer_channel = _names(request_id)
    keys = [f"{key_prefix}{index}" for index in range(len(files))]
    with ExitStack() as stack:
        try:
            answers = stack.enter_context(transport.answer_wait(answer_channel))
            transport.frames_put({key: item.content for key, item in zip(keys, files)},
                                 ttl_s=int(timeout_s) + BYTES_GRACE_S)
        except Exception:
            logger.warning("classify: the transport (%s) refused the request", transport.kind, exc_info=True)
            raise Unavailable("The inference queue is not reachable; retry shortly.",
                                   code="queue_unavailable") from None
        queued = classify_enqueue(
            request_id=request_id, reply_to=answer_channel, source=source, external_id=external_id,
            uploaded_by_id=user_id, deadline_at=time.time() + timeout_s,
            answer_ttl_s=settings.STEELQC_CLASSIFY_IDEMPOTENCY_TTL_S if idempotency_key else 0,
            items=[{"key": key, "filename": item.filename, "sha256": item.sha256} for key, item in zip(keys, files)],
        )
        if not queued:
            if idempotency_key:  # nothing was started under the key: a retry may claim it afresh
                _unclaim(transport, name=_claim_name(user_id, idempotency_key), request_id=request_id)
            try:
                transport.frames_discard(keys)
            except Exception:  # they expire with their TTL anyway
                logger.warning("classify: the unqueued request's images could not be removed", exc_info=True)
            raise Unavailable("The inference queue is not reachable; retry shortly.",
                                   code="queue_unavailable")
        try:
            answer = answers.next_answer(deadline=deadline)
        except SubscriptionBroken:
            logger.warning("classify: the answer channel broke off", exc_info=True)
            return None
        return None if answer is None else json.loads(answer)["results"]


def _claim(transport, *, name: str, request_id: str, fingerprint: str, timeout_s: float) -> str | None:
    """Claim the idempotency key ``name`` for ``request_id``; None once claimed, else the id of the
    request that holds it. A key held by a request that must be lost by now is taken over."""
    # Past this moment the earlier request's images have expired and its task's time limit has run out.
    lost_after = time.time() + timeout_s + BYTES_GRACE_S + settings.STEELQC_INFERENCE_TIME_LIMIT
    record = json.dumps({"request_id": request_id, "fingerprint": fingerprint, "lost_after": lost_after})
    ttl = settings.STEELQC_CLASSIFY_IDEMPOTENCY_TTL_S
    try:
        if transport.value_add(name, record, ttl_s=ttl):
            return None
        held = json.loads(transport.value_get(name) or "null")
    except Exception:
        logger.warning("classify: the transport (%s) refused the idempotency key", transport.kind, exc_info=True)
        raise Unavailable("The inference queue is not reachable; retry shortly.", code="queue_unavailable") from None
    if held is None:  # expired between the two calls
        return _claim(transport, name=name, request_id=request_id, fingerprint=fingerprint, timeout_s=timeout_s)
    if held["fingerprint"] != fingerprint:
        raise Conflict("This Idempotency-Key was used for other files (or another source); use a new key for "
                       "new frames.", code="idempotency_key_reused")
    if time.time() > held["lost_after"] and transport.value_get(_stored_answer_name(held["request_id"])) is None:
        transport.value_set(name, record, ttl_s=ttl)
        return None
    return held["request_id"]


def _unclaim(transport, *, name: str, request_id: str) -> None:
    try:
        held = json.loads(transport.value_get(name) or "null")
        if held and held["request_id"] == request_id:
            transport.value_delete(name)
    except Exception:  # the claim expires; a retry after a lost request takes it over anyway
        logger.warning("classify: the idempotency key could not be released", exc_info=True)


def _earlier_answer(transport, *, request_id: str, deadline: float) -> list[dict] | None:
    """The answer of the earlier request ``request_id``: stored, or awaited until ``deadline``."""
    _, answer_channel = _names(request_id)
    try:
        with transport.answer_wait(answer_channel) as answers:
            # Listening before looking, so an answer sent meanwhile is not missed.
            stored = transport.value_get(_stored_answer_name(request_id))
            if stored is not None:
                return json.loads(stored)["results"]
            answer = answers.next_answer(deadline=deadline)
    except SubscriptionBroken:
        logger.warning("classify: the answer channel broke off", exc_info=True)
        return None
    except Exception:
        logger.warning("classify: the transport (%s) refused the request", transport.kind, exc_info=True)
        raise Unavailable("The inference queue is not reachable; retry shortly.", code="queue_unavailable") from None
    return None if answer is None else json.loads(answer)["results"]


def _error(filename: str, code: str, message: str) -> dict:
    return {"filename": filename, "error": error_body(code, message)["error"]}


def classify_run(*, request_id: str, reply_to: str, items: list[dict], source: str = "", external_id: str = "",
                 uploaded_by_id: int | None = None, deadline_at: float | None = None, answer_ttl_s: int = 0) -> int:
    """The worker's part: predict, apply the retention policy, store what is kept, count, answer.
    Returns how many images were kept.

    Past ``deadline_at`` (epoch seconds) the client has had its 504; unless the answer is to be
    stored for a retry under its idempotency key (``answer_ttl_s``), the request is dropped and
    counted as dropped: the client sends the frames again."""
    from inspections.review.services.inference import serving_answers, serving_models

    transport = classify_transport()
    if deadline_at is not None and not answer_ttl_s and time.time() > deadline_at:
        try:
            transport.frames_discard([item["key"] for item in items])
        except Exception:  # they expire with their TTL
            logger.warning("classify %s: the dropped request's images could not be removed", request_id)
        logger.info("classify %s: dropped %d frame(s) of %r, taken %.1f s after its deadline", request_id,
                    len(items), source, time.time() - deadline_at)
        line_drops_record(source=source, count=len(items))
        return 0
    contents = transport.frames_take([item["key"] for item in items])
    results: list[dict | None] = [None] * len(items)
    arrays, ready = [], []
    for index, (item, content) in enumerate(zip(items, contents)):
        if content is None:
            results[index] = _error(item["filename"], "classify_expired", "The image expired before a worker took it.")
            continue
        try:
            arrays.append(pixels_from_bytes(content))
            ready.append((index, item, content))
        except Exception as error:  # validated in the web process; a decoder may still disagree
            logger.warning("classify %s: %s does not decode: %s", request_id, item["filename"], error)
            results[index] = _error(item["filename"], "undecodable_image", "The image cannot be decoded.")
    kept = 0
    serving = serving_models() if arrays else None
    if arrays and serving is None:
        for index, item, _ in ready:
            results[index] = _error(item["filename"], "no_active_model", "No model version is active.")
    elif arrays:
        version = serving.version
        started = time.perf_counter()
        answers = serving_answers(serving=serving, arrays=arrays)
        latency_ms = (time.perf_counter() - started) * 1000 / len(arrays)
        decisions = retention_decide(source=source, items=[(item["sha256"], answer.review_reasons)
                                                           for (_, item, _), answer in zip(ready, answers)])
        user = get_user_model().objects.filter(pk=uploaded_by_id).first() if uploaded_by_id else None
        seen = []
        for (index, item, content), answer, decision in zip(ready, answers, decisions):
            image_id = None
            if is_kept(decision):
                image_id = _keep(content=content, filename=item["filename"], source=source, external_id=external_id,
                                 user=user, serving=serving, answer=answer, latency_ms=latency_ms)
                kept += image_id is not None
            results[index] = {"filename": item["filename"], "prediction": _answer_json(serving, answer, latency_ms),
                              "kept": image_id is not None, "image_id": image_id}
            seen.append(Seen(label=answer.label, confidence=answer.confidence,
                             review_reasons=tuple(answer.review_reasons), kept=image_id is not None,
                             latency_ms=latency_ms))
        try:
            line_minute_record(source=source, model_version_id=version.pk, rows=seen)
        except Exception:  # the answer matters more than the counts
            logger.exception("classify %s: the line counts could not be written", request_id)
    answer = json.dumps({"request_id": request_id, "results": results})
    try:
        transport.answer_send(reply_to, answer, stored_name=_stored_answer_name(request_id) if answer_ttl_s else "",
                              stored_ttl_s=answer_ttl_s)
    except Exception:
        logger.warning("classify %s: the answer could not be published", request_id, exc_info=True)
    return kept


def _answer_json(serving, answer, latency_ms: float) -> dict:
    """One frame's ``prediction`` in the answer: the classifier's fields (empty without one) and
    the anomaly model's score beside them (null without one)."""
    result, version = answer.result, serving.version
    return {
        "label": answer.label, "confidence": answer.confidence,
        "probabilities": {k: float(v) for k, v in result.probabilities.items()} if result else {},
        "needs_review": bool(answer.review_reasons), "review_reasons": answer.review_reasons,
        "frame_issue": result.frame_issue if result else None,
        "ood_score": float(result.ood_score) if result else None,
        "anomaly_score": answer.anomaly_score,
        "anomaly_model_version": serving.anomaly_version.pk if answer.anomaly_score is not None else None,
        "boxes": prediction_boxes_marked(boxes=result.boxes, version=version) if result else [],
        "latency_ms": latency_ms,
        "model_version": version.pk, "model_version_number": version.number,
    }


def _keep(*, content: bytes, filename: str, source: str, external_id: str, user, serving, answer,
          latency_ms: float) -> int | None:
    """Store one kept image as an upload would, with this prediction; its id (None if it failed)."""
    from inspections.review.services.inference import prediction_for

    try:
        image = image_upload(content=content, filename=upload_display_name(filename), uploaded_by=user,
                             source=source, external_id=external_id, enqueue=False).image
    except Exception:
        logger.exception("classify: a kept image (%s) could not be stored", filename)
        return None
    try:
        with transaction.atomic():
            Prediction.objects.bulk_create(
                [prediction_for(image=image, serving=serving, answer=answer, latency_ms=latency_ms)],
                ignore_conflicts=True)
            images_latest_prediction_refresh(image_ids=[image.pk])
            InspectionImage.objects.filter(pk=image.pk, status=ImageStatus.PENDING).update(status=ImageStatus.PREDICTED)
        images_done_announce(image_ids=[image.pk])
    except Exception:
        # Kept, without its prediction yet: it stays pending and the sweeper queues it for inference.
        logger.exception("classify: the prediction of kept image %s could not be written", image.pk)
    return image.pk
