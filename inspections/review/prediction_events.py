"""Waking uploads that wait for their prediction (``?wait=``) when it is written.

The inference service announces every image it finished (predicted, or failed to decode) on a
Redis pub/sub channel per image, after its transaction committed. A waiting request subscribes
to its images' channels *before* it looks at the database once, then sleeps on the subscription
until every image was announced or its deadline passed: no polling loop, and the waiting thread
holds a Redis connection, not a database connection.

Without Redis (the embedded `make run` installation uses the filesystem broker and SQLite)
there is nothing to subscribe to, and waiting falls back to a slow database poll
(``FALLBACK_POLL_S``). CI and production always have Redis (``STEELQC_EVENTS_REDIS_URL``).

``classify/`` requests wait for their answer channel the same way (``subscribed``: subscribe,
then queue the work, then sleep on the subscription until the answer or the deadline).

Each web process admits at most ``STEELQC_API_MAX_WAITERS`` waiting requests at once
(``waiter_slot``): with threaded gunicorn workers a waiter holds a thread, and the bound keeps
threads free for everything else.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings

from inspections.review.selectors import images_finished

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "steelqc:image-done:"  # + database name + ":" + image id
FALLBACK_POLL_S = 0.5

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()
_waiters = 0
_waiters_lock = threading.Lock()


def channel(image_id: int) -> str:
    """One channel per image, named after the database too: pub/sub channels are shared by
    every database number of a Redis server, and image ids are only unique per database."""
    from django.db import connection

    return f"{CHANNEL_PREFIX}{connection.settings_dict['NAME']}:{image_id}"


def _client():
    """This process's Redis client for the events URL (thread-safe pool), or None without Redis."""
    url = settings.STEELQC_EVENTS_REDIS_URL
    if not url:
        return None
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = _clients[url] = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=0)
        return client


def events_client():
    """This process's Redis client for events (also the classify answers and retention caps), or None."""
    return _client()


def images_done_announce(*, image_ids: Iterable[int]) -> None:
    """Tell waiters these images are finished. Call after the commit that finished them; never
    raises (a waiter that misses the message answers at its deadline with what is stored)."""
    ids = list(image_ids)
    client = _client()
    if client is None or not ids:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for image_id in ids:
            pipe.publish(channel(image_id), b"1")
        pipe.execute()
    except Exception:
        logger.warning("could not announce finished images %s", ids[:20], exc_info=True)


class TooManyWaiters(Exception):
    """This process already holds ``STEELQC_API_MAX_WAITERS`` waiting requests."""


@contextmanager
def waiter_slot() -> Iterator[None]:
    """Hold one of this process's waiter places, or raise TooManyWaiters at once."""
    global _waiters
    with _waiters_lock:
        if _waiters >= settings.STEELQC_API_MAX_WAITERS:
            raise TooManyWaiters
        _waiters += 1
    try:
        yield
    finally:
        with _waiters_lock:
            _waiters -= 1


class SubscriptionBroken(Exception):
    """Redis refused the subscription or the connection broke off while waiting."""


class Subscription:
    """Messages on the channels subscribed to, one at a time (see ``subscribed``)."""

    def __init__(self, pubsub) -> None:
        self._pubsub = pubsub

    def next_message(self, *, deadline: float) -> tuple[str, bytes] | None:
        """The next (channel, data) published, or None once ``deadline`` (time.monotonic) passed.
        Raises SubscriptionBroken when the connection breaks off."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                message = self._pubsub.get_message(timeout=remaining)
            except Exception as error:
                raise SubscriptionBroken from error
            if message and message.get("type") == "message":
                name = message["channel"]
                return (name.decode() if isinstance(name, bytes) else name), message["data"]


@contextmanager
def subscribed(channels: list[str]) -> Iterator[Subscription]:
    """Subscribe to ``channels`` (no Redis: SubscriptionBroken) and yield the subscription.

    Subscribe *before* doing what makes someone publish (looking at the database, queueing the
    work), so no message can slip between the two. Closed on leaving; never holds a database
    connection."""
    client = _client()
    if client is None:
        raise SubscriptionBroken("no Redis configured (STEELQC_EVENTS_REDIS_URL)")
    try:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(*channels)
    except Exception as error:
        raise SubscriptionBroken from error
    try:
        yield Subscription(pubsub)
    finally:
        try:
            pubsub.close()
        except Exception:  # a subscription that broke off may fail to close too; the answer stands
            logger.debug("closing a subscription failed", exc_info=True)


def images_await(*, image_ids: list[int], timeout_s: float, done: Callable[[list[int]], set[int]]) -> set[int]:
    """Wait until ``done`` would say every image is finished, or ``timeout_s`` passed.

    ``done(ids)`` reads the database once and returns the finished ones; it is called once
    before sleeping (after subscribing, so no announcement can slip between the two), and again
    only if the subscription broke. Returns the ids known finished.
    """
    deadline = time.monotonic() + max(timeout_s, 0.0)
    if _client() is None:
        return _poll(image_ids=image_ids, deadline=deadline, done=done)
    try:
        with subscribed([channel(i) for i in image_ids]) as announcements:
            finished = done(image_ids)
            missing = {channel(i): i for i in image_ids if i not in finished}
            while missing:
                message = announcements.next_message(deadline=deadline)
                if message is None:
                    break
                image_id = missing.pop(message[0], None)
                if image_id is not None:
                    finished.add(image_id)
            return finished
    except SubscriptionBroken:
        logger.warning("image announcements failed; answering with what is stored", exc_info=True)
        return done(image_ids)


def _poll(*, image_ids: list[int], deadline: float, done: Callable[[list[int]], set[int]]) -> set[int]:
    """The embedded installation's fallback (no Redis): look again every FALLBACK_POLL_S."""
    while True:
        finished = done(image_ids)
        remaining = deadline - time.monotonic()
        if len(finished) == len(set(image_ids)) or remaining <= 0:
            return finished
        time.sleep(min(FALLBACK_POLL_S, remaining))


def prediction_wait(*, image_ids: list[int], timeout_s: float) -> set[int]:
    """Wait until each image has a prediction or failed inference, or time is up; returns the
    finished ids. Woken by the inference service's announcement (Redis pub/sub, above), so the
    database is read once, not polled.

    Runs outside any transaction so the read sees what the worker has committed.
    """
    timeout_s = timeout_s if math.isfinite(timeout_s) else 0.0
    return images_await(
        image_ids=list(image_ids), timeout_s=timeout_s, done=lambda ids: images_finished(image_ids=ids),
    )
