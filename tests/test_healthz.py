"""/healthz: database, broker and storage checked against the real services, each time-bounded."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_all_checks_ok_against_the_real_services(client):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert {check["status"] for check in body["checks"].values()} == {"ok"}


def test_needs_no_authentication_and_is_not_cached(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_a_broker_that_refuses_connections_is_a_503_naming_the_broker(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["storage"]["status"] == "ok"


def test_a_broker_that_never_answers_cannot_hang_the_check(client, settings, silent_server):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    settings.STEELQC_HEALTH_TIMEOUT_S = 0.5
    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["status"] in {"timeout", "error"}
    assert elapsed < 2.0


def test_error_details_stay_in_the_log_not_in_the_public_answer(client, settings, caplog):
    port = _closed_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/healthz")
    assert str(port) not in response.content.decode()
    assert any(str(port) in record.getMessage() for record in caplog.records)


def test_unwritable_storage_is_reported(client, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocker
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["status"] == "error"


def test_only_reads_are_allowed(client):
    assert client.post("/healthz").status_code == 405


def _compose_healthcheck_code() -> str:
    test = COMPOSE["services"]["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    return test[3]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker_up", [True, False])
def test_the_compose_web_healthcheck_passes_only_when_healthz_is_ok(live_server, settings, broker_up):
    if not broker_up:
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    code = _compose_healthcheck_code()
    assert "http://127.0.0.1:8000/healthz" in code
    code = code.replace("http://127.0.0.1:8000", live_server.url)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode == 0) is broker_up, result.stderr


def test_every_app_service_with_a_port_has_a_healthcheck():
    for name, service in COMPOSE["services"].items():
        if service.get("ports"):
            assert "healthcheck" in service, name
            assert re.search(r"interval", " ".join(service["healthcheck"])), name
