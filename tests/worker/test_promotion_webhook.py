"""The promotion webhook is delivered by the real worker, retried after a failure, and never
holds up the promotion."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from inspections.models import ModelVersionStatus
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import ModelVersionFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver():
    """A local HTTP endpoint that fails the first ``fail_first`` deliveries, then accepts."""
    state = {"fail_first": 0, "bodies": [], "attempts": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["attempts"] += 1
            if state["attempts"] <= state["fail_first"]:
                self.send_response(503)
            else:
                state["bodies"].append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/steelqc-events"
    yield state
    server.shutdown()


def _wait(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_promotion_posts_the_version_and_its_metrics(celery_worker, receiver, settings):
    settings.STEELQC_PROMOTION_WEBHOOK_URL = receiver["url"]
    version = ModelVersionFactory(metrics={"accuracy": 0.99, "macro_f1": 0.98})
    model_version_promote(version=version)
    assert _wait(lambda: receiver["bodies"])
    body = receiver["bodies"][0]
    assert body["event"] == "model_version.promoted"
    assert body["version"]["number"] == version.number
    assert body["metrics"] == {"accuracy": 0.99, "macro_f1": 0.98}


def test_a_failing_receiver_is_retried_and_the_promotion_stands(celery_worker, receiver, settings):
    settings.STEELQC_PROMOTION_WEBHOOK_URL = receiver["url"]
    receiver["fail_first"] = 1
    version = ModelVersionFactory()
    model_version_promote(version=version)
    version.refresh_from_db()
    assert version.status == ModelVersionStatus.ACTIVE  # before any delivery succeeded
    assert _wait(lambda: receiver["bodies"], timeout=40)
    assert receiver["attempts"] == 2


def test_no_url_means_no_event(celery_worker, receiver, settings):
    settings.STEELQC_PROMOTION_WEBHOOK_URL = ""
    model_version_promote(version=ModelVersionFactory())
    time.sleep(2)
    assert receiver["attempts"] == 0
