"""The MQTT outlet and inlet against a real Mosquitto (a private one per test, so it can be
stopped and started): results in order with exactly their fields, none lost across a broker
restart or a bridge restart, none twice; frames taken from the broker; alerts; credentials."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import threading
import time
import uuid
from datetime import timedelta

import paho.mqtt.client as paho
import pytest
from django.utils import timezone

from inspections.line.bridge.config import BridgeConfigError, mqtt_broker_from_url
from inspections.line.bridge.mqtt import MqttFrameInlet, MqttLink
from inspections.line.bridge.stats import SourceStats
from inspections.line.models import BridgeFrame, BridgeMessage, DriftAlert
from inspections.line.selectors import bridge_outbox_size
from inspections.line.services.bridge import (
    RESULT_FIELDS,
    FrameOutcome,
    bridge_drift_alerts_queue,
    bridge_frames_claim,
    bridge_frames_finish,
    result_payload,
)
from tests.conftest import ROOT, wait_for
from tests.factories import image_bytes
from tests.mosquitto import PrivateBroker

pytestmark = pytest.mark.django_db


class Subscriber:
    """A persistent-session QoS 1 subscriber that keeps what it receives, in order."""

    def __init__(self, broker: PrivateBroker, topics: list[str], *, username: str = "", password: str = ""):
        self.received: list[tuple[str, dict]] = []
        self.ready = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}",
                             clean_session=False)
        if username:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=1)

        def connected(client, userdata, flags, reason_code, properties):
            client.subscribe([(topic, 1) for topic in topics])

        client.on_connect = connected
        client.on_subscribe = lambda *args: self.ready.set()
        client.on_message = lambda client, userdata, m: self.received.append((m.topic, json.loads(m.payload)))
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert self.ready.wait(5)
        self.client = client

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(broker):
    opened = []

    def open_(topics, **credentials):
        opened.append(Subscriber(broker, topics, **credentials))
        return opened[-1]

    yield open_
    for client in opened:
        client.close()


def _link(url: str, **options) -> MqttLink:
    link = MqttLink(mqtt_broker_from_url(url, client_id=f"bridge-{uuid.uuid4().hex[:8]}"), **options)
    link.start()
    return link


def _close(link: MqttLink) -> None:
    link.stop.set()
    link.client.disconnect()
    link.client.loop_stop()


def _publish_all(link: MqttLink, timeout: float = 10) -> None:
    """Drive the publishing loop (in this thread, on the test's database connection) until the
    broker acknowledged every waiting message."""
    deadline = time.monotonic() + timeout
    while bridge_outbox_size() and time.monotonic() < deadline:
        link.publish_step()
        time.sleep(0.02)
    assert bridge_outbox_size() == 0


def _record(source: str, names: list[str], *, reasons: tuple[str, ...] = ()) -> list[dict]:
    """Results recorded for frames named ``names`` as the inlets record them (outbox included)."""
    shas = [hashlib.sha256(f"{source}/{name}".encode()).hexdigest() for name in names]
    bridge_frames_claim(source=source, frames=list(zip(names, shas)))
    answer = {"prediction": {"label": "patches", "confidence": 0.8, "review_reasons": list(reasons),
                             "needs_review": bool(reasons), "model_version": 3, "boxes": []},
              "kept": False, "image_id": None}
    outcomes = [FrameOutcome(sha256=sha, result=result_payload(filename=name, sha256=sha, answer=answer,
                                                               at=timezone.now()))
                for name, sha in zip(names, shas)]
    return bridge_frames_finish(source=source, outcomes=outcomes, publish=True)


def test_results_are_published_in_order_with_exactly_their_fields_and_marked(broker, subscriber):
    watcher = subscriber(["steelqc/+/result"])
    _record("line-a", [f"f{i}.png" for i in range(5)])
    link = _link(broker.url)
    try:
        assert link.connected.wait(5)
        _publish_all(link)
        wait_for(lambda: len(watcher.received) >= 5, timeout=5)
    finally:
        _close(link)
    assert [topic for topic, _ in watcher.received] == ["steelqc/line-a/result"] * 5
    assert [payload["filename"] for _, payload in watcher.received] == [f"f{i}.png" for i in range(5)]
    assert all(set(payload) == set(RESULT_FIELDS) for _, payload in watcher.received)
    assert not BridgeMessage.objects.filter(published_at__isnull=True).exists()


def test_results_recorded_while_the_broker_is_down_are_published_in_order_when_it_returns(broker, subscriber):
    watcher = subscriber(["steelqc/line-b/result"])
    link = _link(broker.url)
    try:
        assert link.connected.wait(5)
        _record("line-b", ["before.png"])
        _publish_all(link)
        broker.stop()
        wait_for(lambda: not link.connected.is_set(), timeout=5)
        names = [f"down-{i}.png" for i in range(20)]
        _record("line-b", names)
        for _ in range(10):  # the loop runs on while the broker is away: nothing is lost meanwhile
            link.publish_step()
        assert bridge_outbox_size() == 20
        broker.start()
        assert link.connected.wait(10)
        _publish_all(link)
        wait_for(lambda: len(watcher.received) >= 21, timeout=10)
        time.sleep(0.3)
    finally:
        _close(link)
    received = [payload["filename"] for _, payload in watcher.received]
    assert received == ["before.png", *names]  # in order, none lost, none twice


def test_a_bridge_restart_publishes_what_waited_once_and_nothing_twice(broker, subscriber):
    watcher = subscriber(["steelqc/line-c/result"])
    _record("line-c", ["a.png", "b.png"])
    first = _link(broker.url)
    assert first.connected.wait(5)
    _publish_all(first)
    _close(first)
    _record("line-c", ["c.png", "d.png"])  # recorded while no bridge publishes
    second = _link(broker.url)
    try:
        assert second.connected.wait(5)
        _publish_all(second)
        wait_for(lambda: len(watcher.received) >= 4, timeout=5)
        time.sleep(0.3)
    finally:
        _close(second)
    assert [payload["filename"] for _, payload in watcher.received] == ["a.png", "b.png", "c.png", "d.png"]


def test_a_foreign_frame_and_drift_alerts_are_published_once_each(broker, subscriber):
    watcher = subscriber(["steelqc/line-d/alert"])
    _record("line-d", ["odd.png"], reasons=("foreign", "low_confidence"))
    now = timezone.now()
    alert = DriftAlert.objects.create(source="line-d", opened_at=now - timedelta(minutes=5), window_hours=24,
                                      threshold=0.2, foreign_share=0.4, image_count=50)
    DriftAlert.objects.create(source="line-d", opened_at=now - timedelta(days=3), closed_at=now - timedelta(days=2),
                              window_hours=24, threshold=0.2, foreign_share=0.5, image_count=50)  # long ago
    assert bridge_drift_alerts_queue(sources=["line-d"]) == 1
    alert.closed_at, alert.closed_foreign_share = now, 0.1
    alert.save()
    assert bridge_drift_alerts_queue(sources=["line-d"]) == 1
    assert bridge_drift_alerts_queue(sources=["line-d"]) == 0
    link = _link(broker.url)
    try:
        assert link.connected.wait(5)
        _publish_all(link)
        wait_for(lambda: len(watcher.received) >= 3, timeout=5)
    finally:
        _close(link)
    kinds = [(payload["kind"], payload.get("reason"), payload.get("foreign_share")) for _, payload in watcher.received]
    assert kinds == [("flagged", "foreign", None), ("drift_opened", None, 0.4), ("drift_closed", None, 0.1)]
    assert watcher.received[1][1]["alert_id"] == alert.pk


def test_frames_published_to_the_frame_topic_are_classified_once_and_acknowledged(broker, fake_classifier):
    link = _link(broker.url, frame_sources=("line-e",))
    inlet = MqttFrameInlet(link=link, classify=fake_classifier, stats={"line-e": SourceStats("line-e")})
    sender = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"camera-{uuid.uuid4().hex[:8]}")
    try:
        assert link.connected.wait(5)
        time.sleep(0.2)  # the subscription is made on connect
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        frame = image_bytes(seed=60)
        for payload in (frame, b"not an image", frame):
            sender.publish("steelqc/line-e/frame", payload, qos=1).wait_for_publish(5)
        taken = [inlet.take(link.frames.get(timeout=5)) for _ in range(3)]
    finally:
        sender.disconnect()
        sender.loop_stop()
        _close(link)
    assert taken == [True, True, True]
    assert len(fake_classifier.calls) == 1
    frame_row = BridgeFrame.objects.get(source="line-e")
    assert (frame_row.origin, frame_row.state, frame_row.sha256) == ("mqtt", "done", hashlib.sha256(frame).hexdigest())
    assert BridgeMessage.objects.get().payload["filename"] == f"mqtt-{frame_row.sha256[:16]}"
    assert inlet.stats["line-e"].total == {"taken": 1, "done": 1, "flagged": 0, "failed": 1, "duplicates": 1}


def test_a_frame_not_answered_before_a_stop_is_not_acknowledged(broker, fake_classifier):
    link = _link(broker.url, frame_sources=("line-f",))
    inlet = MqttFrameInlet(link=link, classify=fake_classifier, stats={"line-f": SourceStats("line-f")})
    try:
        assert link.connected.wait(5)
        time.sleep(0.2)
        sender = paho.Client(paho.CallbackAPIVersion.VERSION2)
        sender.connect("127.0.0.1", broker.port)
        sender.loop_start()
        sender.publish("steelqc/line-f/frame", image_bytes(seed=61), qos=1).wait_for_publish(5)
        sender.disconnect()
        sender.loop_stop()
        fake_classifier.stop_next = True
        assert inlet.take(link.frames.get(timeout=5)) is False
    finally:
        _close(link)
    assert BridgeFrame.objects.get(source="line-f").state == "taken"  # the broker's repeat finishes it


def test_a_broker_with_passwords_takes_the_url_credentials_and_refuses_wrong_ones(tmp_path):
    broker = PrivateBroker(tmp_path / "secured", users={"bridge": "s3cret:/@"})
    broker.start()
    try:
        wrong = _link(f"mqtt://bridge:nope@127.0.0.1:{broker.port}")
        right = _link(f"mqtt://bridge:s3cret%3A%2F%40@127.0.0.1:{broker.port}")
        try:
            assert right.connected.wait(5)
            assert not wrong.connected.wait(0.5)
        finally:
            _close(wrong)
            _close(right)
    finally:
        broker.stop()


def test_broker_urls():
    plain = mqtt_broker_from_url("mqtt://user:p%40ss@broker.plant:1884")
    assert (plain.host, plain.port, plain.tls, plain.username, plain.password) == (
        "broker.plant", 1884, False, "user", "p@ss")
    secure = mqtt_broker_from_url("mqtts://broker.plant")
    assert (secure.port, secure.tls, secure.username) == (8883, True, "")
    for bad in ("http://broker", "mqtt://", "mqtt://host:port"):
        with pytest.raises(BridgeConfigError):
            mqtt_broker_from_url(bad)


def test_the_operations_guides_mosquitto_sub_example_shows_a_result(broker):
    guide = (ROOT / "docs" / "operations.md").read_text()
    command = next(line for line in guide.split("\n### MQTT\n", 1)[1].splitlines() if line.startswith("mosquitto_sub"))
    assert "-p 1883" in command
    args = shlex.split(command.replace("-p 1883", f"-p {broker.port}")) + ["-C", "1", "-W", "10"]
    watching = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # subscribed
        _record("strip-top", ["coil-4711-0001.png"])
        link = _link(broker.url)
        try:
            assert link.connected.wait(5)
            _publish_all(link)
        finally:
            _close(link)
        out, _ = watching.communicate(timeout=15)
    finally:
        if watching.poll() is None:
            watching.kill()
    topic, payload = out.strip().split(" ", 1)
    assert topic == "steelqc/strip-top/result" and json.loads(payload)["filename"] == "coil-4711-0001.png"


def _self_signed(folder) -> tuple[str, str, str]:
    """(CA file, certificate file, key file): a CA and a server certificate for 127.0.0.1."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, *, ca: bool):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
                "127.0.0.1"))]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test plant CA")])
    ca_cert = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    server_cert = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name,
                              server_key.public_key(), ca_key, ca=False)
    files = {"ca.pem": ca_cert.public_bytes(serialization.Encoding.PEM),
             "server.pem": server_cert.public_bytes(serialization.Encoding.PEM),
             "server.key": server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key")


def test_an_mqtts_url_connects_over_tls_checked_against_the_ca_file(tmp_path):
    ca, cert, key = _self_signed(tmp_path)
    broker = PrivateBroker(tmp_path / "tls")
    broker.config.write_text(broker.config.read_text() + f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    broker.start()
    try:
        url = f"mqtts://127.0.0.1:{broker.port}"
        trusted = MqttLink(mqtt_broker_from_url(url, client_id=f"tls-{uuid.uuid4().hex[:6]}", ca_file=ca))
        untrusted = MqttLink(mqtt_broker_from_url(url, client_id=f"tls-{uuid.uuid4().hex[:6]}"))  # system CAs
        for link in (trusted, untrusted):
            link.start()
        try:
            assert trusted.connected.wait(5)
            assert not untrusted.connected.wait(0.5)
        finally:
            _close(trusted)
            _close(untrusted)
    finally:
        broker.stop()
