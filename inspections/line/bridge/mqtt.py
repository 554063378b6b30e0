"""The MQTT outlet and inlet (paho-mqtt, MQTT 3.1.1).

Out: the outbox (``BridgeMessage`` rows, written in the transaction that records each result) is
published QoS 1 in the order it was written, at most ``window`` messages awaiting the broker's
acknowledgement at a time, and a message is marked published only once the broker acknowledged
it. While the broker is away nothing is handed over and the outbox grows, up to
``STEELQC_MQTT_QUEUE_LIMIT`` messages (the inlets then stop taking frames); when it is back the
client reconnects by itself, re-sends what was unacknowledged (paho keeps it, in order) and the
rest follows. Rows survive a restart: what was not acknowledged is published at the next start.

In (optional): frames published to ``steelqc/<source>/frame`` for the sources in
``STEELQC_MQTT_FRAME_SOURCES`` (payload: the image file's bytes), received QoS 1 on a persistent
session and acknowledged only once their result is recorded, so the broker sends a frame again
if the bridge stopped first; the record recognises the repeat.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from django.db import close_old_connections, connection

from inspections.errors import ApplicationError
from inspections.line.bridge.config import MqttBroker
from inspections.line.bridge.frames import (
    Classify,
    batch_send,
    frame_checked,
    refusal_reason,
)
from inspections.line.bridge.stats import SourceStats
from inspections.line.models import BridgeFrameOrigin
from inspections.line.selectors import bridge_outbox_after
from inspections.line.services.bridge import (
    bridge_frames_claim,
    bridge_messages_published,
    frame_topic,
)

logger = logging.getLogger("inspections.line.bridge")


class MqttLink:
    """One client connection: publishes the outbox and, with ``frame_sources``, takes frames."""

    def __init__(self, broker: MqttBroker, *, frame_sources: tuple[str, ...] = (), window: int = 100,
                 stop: threading.Event | None = None):
        self.broker, self.frame_sources, self.window = broker, frame_sources, window
        self.stop = stop or threading.Event()
        self.connected = threading.Event()
        self.wake = threading.Event()
        self.frames: queue.Queue = queue.Queue()
        self.published_total = 0
        self._acked: collections.deque[int] = collections.deque()
        self._inflight: dict[int, int] = {}  # paho mid -> message id
        self._last_id = 0  # the newest message handed to paho by this process
        self._refused_logged = 0.0
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=broker.client_id, clean_session=False,
                             protocol=paho.MQTTv311)
        if broker.username:
            client.username_pw_set(broker.username, broker.password or None)
        if broker.tls:
            client.tls_set(ca_certs=broker.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_inflight_messages_set(window)
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_publish, client.on_message = self._on_publish, self._on_message
        if frame_sources:
            client.manual_ack_set(True)
        self.client = client

    # --- connection (paho's network thread) -----------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            now = time.monotonic()
            if now - self._refused_logged > 60:
                logger.error("line bridge: the MQTT broker %s:%d refused the connection: %s", self.broker.host,
                             self.broker.port, reason_code)
                self._refused_logged = now
            return
        logger.info("line bridge: connected to the MQTT broker %s:%d", self.broker.host, self.broker.port)
        for source in self.frame_sources:
            client.subscribe(frame_topic(source), qos=1)
        self.connected.set()
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self.stop.is_set():
            logger.warning("line bridge: lost the MQTT broker (%s); results wait in the outbox", reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called under paho's own lock: only note it; the publishing thread does the rest.
        self._acked.append(mid)
        self.wake.set()

    def _on_message(self, client, userdata, message) -> None:
        self.frames.put(message)

    # --- publishing (its own thread) ------------------------------------------------------

    def run_publisher(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    close_old_connections()
                    self.publish_step()
                except Exception:
                    logger.exception("line bridge: publishing failed; trying again in 2 s")
                    self.stop.wait(2)
                self.wake.wait(0.2)
                self.wake.clear()
            self._drain(timeout_s=3.0)
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            connection.close()

    def publish_step(self) -> None:
        self._mark_acked()
        if not self.connected.is_set() or len(self._inflight) >= self.window:
            return
        for message in bridge_outbox_after(after_id=self._last_id, limit=self.window - len(self._inflight)):
            info = self.client.publish(message.topic, json.dumps(message.payload, separators=(",", ":")), qos=1)
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                logger.warning("line bridge: paho refused message %d (%s); trying again", message.pk, info.rc)
                return
            self._inflight[info.mid] = message.pk
            self._last_id = message.pk

    def _mark_acked(self) -> None:
        ids = []
        while self._acked:
            message_id = self._inflight.pop(self._acked.popleft(), None)
            if message_id is not None:
                ids.append(message_id)
        if ids:
            bridge_messages_published(ids=ids)
            self.published_total += len(ids)

    def _drain(self, *, timeout_s: float) -> None:
        """At stop: wait a little for the acknowledgements of what was handed over."""
        deadline = time.monotonic() + timeout_s
        while self._inflight and self.connected.is_set() and time.monotonic() < deadline:
            self._mark_acked()
            time.sleep(0.02)
        self._mark_acked()

    @property
    def waiting_in_client(self) -> int:
        return len(self._inflight)


@dataclass
class MqttFrameInlet:
    """Frames from ``steelqc/<source>/frame``: checked, classified and recorded one at a time, each
    acknowledged to the broker once its result (or refusal) is recorded."""

    link: MqttLink
    classify: Classify
    stats: dict[str, SourceStats]
    on_results: object = None
    publish: bool = True

    def run(self) -> None:
        try:
            while not self.link.stop.is_set():
                try:
                    message = self.link.frames.get(timeout=0.5)
                except queue.Empty:
                    continue
                try:
                    close_old_connections()
                    if self.take(message):
                        self.link.client.ack(message.mid, message.qos)
                except Exception:
                    logger.exception("line bridge: an MQTT frame could not be processed; the broker sends it again "
                                     "after a reconnect")
        finally:
            connection.close()

    def take(self, message) -> bool:
        """Process one frame; True once it may be acknowledged."""
        source = message.topic.split("/")[1]
        stats = self.stats[source]
        try:
            item = frame_checked(name="", content=bytes(message.payload))
        except ApplicationError as error:
            logger.info("line bridge %s: an MQTT frame refused: %s", source, refusal_reason(error))
            stats.add(failed=1)
            return True
        name = f"mqtt-{item.sha256[:16]}"
        _, states = bridge_frames_claim(source=source, frames=[(name, item.sha256)],
                                            origin=BridgeFrameOrigin.MQTT)
        state, held_by = states[item.sha256]
        if state == "done":
            stats.add(duplicates=1)
            return True
        item = type(item)(filename=name, content=item.content, sha256=item.sha256)
        stats.add(taken=1)
        answer = batch_send(source=source, batch=held_by, files=[item], classify=self.classify, publish=self.publish)
        while answer.again and not self.link.stop.wait(2):  # expired before a worker took it: send it again
            answer = batch_send(source=source, batch=answer.again_batch, files=[item], classify=self.classify,
                                publish=self.publish)
        if answer.stopped or answer.again:
            return False
        if answer.failures:
            stats.add(failed=1)
        stats.results(answer.results.values())
        if answer.results and self.on_results is not None:
            self.on_results(source, list(answer.results.values()))
        return True
