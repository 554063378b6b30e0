"""``manage.py line_bridge`` as it runs: configuration refused with a message, the ways it is
started (compose, make run), and one end-to-end run through the real line worker, killed mid-request
and started again: every file classified and counted once, and published once (OPC UA: test_opcua.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from django.core.management import CommandError, call_command

from inspections.line.bridge.config import BridgeConfigError, bridge_config
from inspections.line.models import BridgeFrame
from inspections.models import LineMinute
from inspections.registry.services.model_versions import (
    model_version_promote,
    model_version_register,
)
from tests.conftest import ROOT, _worker_env, tiny_dataset, wait_for
from tests.factories import image_bytes

SCRIPT = (ROOT / "scripts" / "run-local.sh").read_text()


def test_the_configuration_is_checked_before_anything_starts(tmp_path, settings):
    with pytest.raises(CommandError, match="Nothing to take frames from"):
        call_command("line_bridge")
    with pytest.raises(CommandError, match="expected SOURCE=DIR"):
        call_command("line_bridge", folder=["just-a-folder"])
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("line_bridge", folder=[f"cam={tmp_path / 'missing'}"])
    with pytest.raises(CommandError, match="letters, digits"):
        call_command("line_bridge", folder=[f"cam/+={tmp_path}"])
    settings.STEELQC_OPCUA_ENDPOINT = "opc.tcp://127.0.0.1:4840/steelqc/"
    with pytest.raises(BridgeConfigError, match="STEELQC_OPCUA_USERNAME"):
        bridge_config(folders=[f"cam={tmp_path}"])
    settings.STEELQC_OPCUA_ALLOW_ANONYMOUS = True
    settings.STEELQC_BRIDGE_FOLDERS = ["ignored=/nowhere"]
    config = bridge_config(folders=[f"cam={tmp_path}"])
    assert config.folders == {"cam": tmp_path.resolve()} and config.opcua.allow_anonymous


def test_compose_runs_the_bridge_as_its_own_service_in_the_line_profile():
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["line-bridge"]
    assert service["command"] == ["python", "manage.py", "line_bridge"]
    assert service["profiles"] == ["line"]
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_make_run_starts_the_bridge_only_when_it_has_frames_to_take():
    guard = SCRIPT.split("manage.py line_bridge", 1)[0].rsplit("\nif ", 1)[1]
    assert "STEELQC_BRIDGE_FOLDERS" in guard and "STEELQC_MQTT_FRAME_SOURCES" in guard and "\nfi" not in guard
    assert SCRIPT.index("line_bridge &") < SCRIPT.index('wait -n "${pids[@]}"')  # stopped with the rest


class Watcher:
    def __init__(self, port: int, topic: str):
        self.received: list[dict] = []
        ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"e2e-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.received.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _start_bridge(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "line_bridge"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bridge_killed_mid_request_and_started_again_classifies_counts_and_publishes_each_file_once(
        celery_worker, tiny_model_dirs, broker, media_root, tmp_path):
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    source = f"e2e-{uuid.uuid4().hex[:6]}"
    folder = tmp_path / "camera"
    folder.mkdir()
    tiles = [path.read_bytes() for path, _, _ in tiny_dataset(tmp_path / "tiles", seed=91, per_class=2)]
    tiles += [image_bytes(seed=9100 + i, size=(32, 32)) for i in range(2)]  # noise: flagged
    for index, content in enumerate(tiles):
        (folder / f"frame-{index:03d}.png").write_bytes(content)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    env = {**_worker_env(media_root), "STEELQC_BRIDGE_FOLDERS": f"{source}={folder}", "STEELQC_BRIDGE_SETTLE_S": "0",
           "STEELQC_BRIDGE_POLL_S": "0.2", "STEELQC_BRIDGE_BATCH": "2", "STEELQC_MQTT_URL": broker.url,
           "STEELQC_MQTT_CLIENT_ID": f"bridge-{source}"}
    watcher = Watcher(broker.port, f"steelqc/{source}/result")
    log = tmp_path / "bridge.log"
    bridge = _start_bridge(env, log)
    try:
        # Killed (no clean stop) while its first request waits for the line worker.
        wait_for(lambda: BridgeFrame.objects.filter(source=source).exists(), timeout=60, interval=0.02)
        os.killpg(bridge.pid, signal.SIGKILL)
        bridge.wait(timeout=10)
        assert BridgeFrame.objects.filter(source=source, state="taken").exists()  # it was waiting for an answer
        bridge = _start_bridge(env, log)
        wait_for(lambda: not any(path.is_file() for path in folder.iterdir()), timeout=90, interval=0.2)
        wait_for(lambda: len(watcher.received) >= len(tiles), timeout=20)
        bridge.send_signal(signal.SIGTERM)
        assert bridge.wait(timeout=30) == 0
    finally:
        if bridge.poll() is None:
            os.killpg(bridge.pid, signal.SIGKILL)
        watcher.close()
    output = log.read_text()
    assert sorted(path.name for path in (folder / "done").iterdir()) == [f"frame-{i:03d}.png" for i in range(len(tiles))]
    assert (folder / "failed" / "broken.png.reason.txt").read_text().startswith("undecodable_image:")
    counted = sum(LineMinute.objects.filter(source=source).values_list("seen", flat=True))
    assert counted == len(tiles), output[-3000:]  # the killed request was answered once, not classified twice
    shas = [result["sha256"] for result in watcher.received]
    assert len(shas) == len(set(shas)) == len(tiles)
    assert {result["model_version"] for result in watcher.received} == {version.pk}
    assert any(result["review_reasons"] for result in watcher.received)
    assert f"line bridge {source}: " in output and "line bridge: stopped" in output
