"""Drift events reach the promotion webhook's URL as JSON POSTs naming their event, sent by the
real worker after the check that opened or closed the alert."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from inspections.line.services.drift import drift_alerts_check
from inspections.models import DefectClass, DriftAlert, ModelVersionStatus, Prediction
from inspections.ops.services.webhooks import WebhookDeliveryError, drift_webhook_send
from tests.conftest import wait_for
from tests.factories import InspectionImageFactory, ModelVersionFactory


@pytest.fixture
def receiver():
    """A loopback HTTP endpoint recording each JSON body; answers ``status`` (204 unless changed)."""
    state = {"bodies": [], "status": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["status"] < 300:
                state["bodies"].append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/steelqc-events"
    yield state
    server.shutdown()


def _alert(**fields) -> DriftAlert:
    return DriftAlert.objects.create(**{
        "source": "line-7", "opened_at": timezone.now(), "window_hours": 24, "threshold": 0.2,
        "foreign_share": 0.35, "image_count": 40, "baseline_foreign_share": 0.05, **fields})


@pytest.mark.django_db
def test_the_alert_event_names_the_source_its_share_and_the_baseline(receiver):
    version = ModelVersionFactory(number=907)
    alert = _alert(model_version=version)
    assert drift_webhook_send(alert_id=alert.pk, event="drift.alert", url=receiver["url"]) is True
    content_type, body = receiver["bodies"][0]
    assert content_type == "application/json"
    assert body["event"] == "drift.alert"
    assert body["alert"] == {
        "id": alert.pk, "source": "line-7", "opened_at": alert.opened_at.isoformat(), "closed_at": None,
        "window_hours": 24, "threshold": 0.2, "foreign_share": 0.35, "image_count": 40,
        "baseline_foreign_share": 0.05, "closed_foreign_share": None, "closed_image_count": None,
        "model_version": 907,
    }


@pytest.mark.django_db
def test_a_refusing_receiver_raises_so_the_task_retries_and_a_gone_alert_is_skipped(receiver):
    receiver["status"] = 503
    with pytest.raises(WebhookDeliveryError, match="answered 503"):
        drift_webhook_send(alert_id=_alert().pk, event="drift.alert", url=receiver["url"])
    assert drift_webhook_send(alert_id=987654, event="drift.alert", url=receiver["url"]) is False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_delivers_the_alert_and_then_its_resolution(celery_worker, receiver, settings):
    settings.STEELQC_PROMOTION_WEBHOOK_URL = receiver["url"]
    settings.STEELQC_DRIFT_MIN_IMAGES = 2
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics={"review": {"reasons": {"foreign": 0.05}}})
    crazing = DefectClass.objects.get_or_create(name="crazing")[0]

    def predicted(reasons):
        Prediction.objects.create(image=InspectionImageFactory(source="line-7"), model_version=version, label=crazing,
                                  confidence=0.9, probabilities={"crazing": 0.9}, needs_review=bool(reasons),
                                  ood_score=1.0, review_reasons=reasons)

    for reasons in (["foreign"], ["foreign"], []):
        predicted(reasons)
    assert len(drift_alerts_check().opened) == 1
    wait_for(lambda: len(receiver["bodies"]) == 1, timeout=30)
    alert = receiver["bodies"][0][1]
    assert (alert["event"], alert["alert"]["source"]) == ("drift.alert", "line-7")
    assert alert["alert"]["foreign_share"] == pytest.approx(2 / 3)

    for _ in range(7):
        predicted([])
    assert len(drift_alerts_check().closed) == 1
    wait_for(lambda: len(receiver["bodies"]) == 2, timeout=30)
    resolved = receiver["bodies"][1][1]
    assert resolved["event"] == "drift.resolved"
    assert resolved["alert"]["closed_foreign_share"] == pytest.approx(0.2)
    assert resolved["alert"]["id"] == alert["alert"]["id"]
