"""The line bridge as one process: the inlets (a thread per watched folder, one for MQTT frames),
the MQTT publisher, the OPC UA server, and the main loop that queues drift alerts, prunes old
records and logs one line per minute per source. ``stop`` (set on SIGTERM) ends it cleanly: each
inlet finishes or abandons its request (its frames stay recorded as taken and are finished at
the next start), the publisher waits a moment for the broker's last acknowledgements."""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection

from inspections.line.bridge.config import BridgeConfig
from inspections.line.bridge.folder import FolderInlet
from inspections.line.bridge.frames import Classify, ServiceClassifier
from inspections.line.bridge.stats import SourceStats
from inspections.line.selectors import bridge_last_results, bridge_outbox_size
from inspections.line.services.bridge import (
    bridge_drift_alerts_queue,
    bridge_records_prune,
)

logger = logging.getLogger("inspections.line.bridge")

ALERT_CHECK_S = 10.0
MINUTE_S = 60.0
JOIN_S = 10.0


class LineBridge:
    def __init__(self, config: BridgeConfig, *, classify: Classify | None = None, stop: threading.Event | None = None,
                 minute_s: float = MINUTE_S):
        self.config = config
        self.stop = stop or threading.Event()
        self.classify = classify or ServiceClassifier(timeout_s=config.timeout_s, stop=self.stop)
        self.minute_s = minute_s
        self.stats = {source: SourceStats(source) for source in config.sources}
        self.mqtt = None
        self.opcua = None
        self._outbox_full_logged = 0.0
        self._inlets: list[threading.Thread] = []
        self._publisher: threading.Thread | None = None

    # --- what the inlets call -------------------------------------------------------------

    def on_results(self, source: str, results: list[dict]) -> None:
        if self.opcua is not None:
            self.opcua.results_arrived(source, results)
        if self.mqtt is not None:
            self.mqtt.wake.set()

    def may_take(self) -> bool:
        """False while the MQTT outbox is full: frames then wait where they are."""
        if self.mqtt is None or bridge_outbox_size() < self.config.queue_limit:
            return True
        now = time.monotonic()
        if now - self._outbox_full_logged > 60:
            logger.warning("line bridge: %d MQTT messages wait for the broker (the limit, STEELQC_MQTT_QUEUE_LIMIT); "
                           "no frames are taken until it acknowledges some", self.config.queue_limit)
            self._outbox_full_logged = now
        return False

    # --- life -----------------------------------------------------------------------------

    def start(self) -> None:
        config = self.config
        if config.opcua is not None:
            from inspections.line.bridge.opcua import OpcUaOutlet

            self.opcua = OpcUaOutlet(config.opcua, sources=config.sources,
                                     last_results=bridge_last_results(sources=config.sources))
            self.opcua.start()
        if config.mqtt is not None:
            from inspections.line.bridge.mqtt import MqttFrameInlet, MqttLink

            self.mqtt = MqttLink(config.mqtt, frame_sources=config.frame_sources, stop=self.stop)
            self.mqtt.start()
            self._publisher = threading.Thread(target=self.mqtt.run_publisher, name="mqtt-publisher", daemon=True)
            self._publisher.start()
            if config.frame_sources:
                inlet = MqttFrameInlet(link=self.mqtt, classify=self.classify, stats=self.stats,
                                       on_results=self.on_results)
                self._inlets.append(threading.Thread(target=inlet.run, name="mqtt-frames", daemon=True))
        for source, folder in sorted(config.folders.items()):
            inlet = FolderInlet(source=source, folder=folder, classify=self.classify, stats=self.stats[source],
                                on_results=self.on_results, publish=config.mqtt is not None, may_take=self.may_take,
                                poll_s=config.poll_s, settle_s=config.settle_s, batch=config.batch, stop=self.stop)
            self._inlets.append(threading.Thread(target=inlet.run, name=f"folder-{source}", daemon=True))
        for thread in self._inlets:
            thread.start()
        logger.info("line bridge: started; folders %s; MQTT %s; OPC UA %s",
                    ", ".join(f"{s}={f}" for s, f in sorted(config.folders.items())) or "none",
                    f"{config.mqtt.host}:{config.mqtt.port}" if config.mqtt else "off",
                    config.opcua.endpoint if config.opcua else "off")

    def run(self) -> None:
        """Start, then loop until ``stop`` is set; then shut down."""
        next_alerts = next_minute = time.monotonic()
        next_minute += self.minute_s
        try:
            self.start()
            while not self.stop.wait(0.5):
                now = time.monotonic()
                if now >= next_alerts:
                    next_alerts = now + ALERT_CHECK_S
                    self._housekeeping(alerts=True, prune=False)
                if now >= next_minute:
                    next_minute = now + self.minute_s
                    self._housekeeping(alerts=False, prune=True)
                    self.log_minute()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.stop.set()
        deadline = time.monotonic() + JOIN_S
        for thread in self._inlets:
            thread.join(timeout=max(deadline - time.monotonic(), 0.1))
        busy = [thread.name for thread in self._inlets if thread.is_alive()]
        if busy:
            logger.info("line bridge: %s still waiting for an answer; left recorded as taken for the next start",
                        ", ".join(busy))
        self.log_minute()
        if self._publisher is not None:
            self._publisher.join(timeout=JOIN_S)
        if self.opcua is not None:
            self.opcua.stop()
        logger.info("line bridge: stopped")
        connection.close()

    def _housekeeping(self, *, alerts: bool, prune: bool) -> None:
        try:
            close_old_connections()
            if alerts and self.mqtt is not None:
                if bridge_drift_alerts_queue(sources=self.config.sources):
                    self.mqtt.wake.set()
            if prune:
                bridge_records_prune(keep_days=self.config.keep_days)
        except Exception:
            logger.exception("line bridge: housekeeping failed; trying again later")

    def log_minute(self) -> None:
        mqtt = "off"
        if self.mqtt is not None:
            try:
                waiting = bridge_outbox_size()
            except Exception:
                waiting = "?"
            mqtt = f"{'connected' if self.mqtt.connected.is_set() else 'DOWN'}, {waiting} waiting"
        for source, stats in sorted(self.stats.items()):
            counts = stats.minute()
            last = stats.last
            logger.info("line bridge %s: %d taken, %d done (%d flagged), %d failed, %d repeated in the last minute; "
                        "last %s; MQTT %s", source, counts["taken"], counts["done"], counts["flagged"],
                        counts["failed"], counts["duplicates"],
                        _last_text(last), mqtt)


def _last_text(last: dict | None) -> str:
    if not last:
        return "none"
    if last["label"] is None:  # an anomaly model answered alone: no class
        return f"no class, reasons {last.get('review_reasons') or []} at {last['at']}"
    return f"{last['label']} {last['confidence']:.2f} at {last['at']}"
