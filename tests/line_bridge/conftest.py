"""The line bridge's tests: a stand-in for the classify step where the check is the bridge's own
logic, a private Mosquitto per test that needs a broker."""

from __future__ import annotations

import pytest

from tests.mosquitto import PrivateBroker


class FakeClassifier:
    """Answers as ``classify_request`` does, at once: a file whose name holds "foreign" is flagged
    foreign. ``calls``: (idempotency key, sha256 of each file) per request. ``stop_next`` answers
    None once (the bridge stopping mid-request); ``expire`` lists names answered classify_expired once."""

    def __init__(self):
        self.calls: list[tuple[str, list[str]]] = []
        self.stop_next = False
        self.expire: set[str] = set()

    def __call__(self, files, *, source, key):
        self.calls.append((key, [item.sha256 for item in files]))
        if self.stop_next:
            self.stop_next = False
            return None
        answers = []
        for item in files:
            if item.filename in self.expire:
                self.expire.discard(item.filename)
                answers.append({"filename": item.filename, "error": {"code": "classify_expired", "message": "x",
                                                                     "details": {}}})
                continue
            reasons = ["foreign"] if "foreign" in item.filename else []
            answers.append({
                "filename": item.filename,
                "prediction": {"label": "scratches", "confidence": 0.91, "probabilities": {"scratches": 0.91},
                               "needs_review": bool(reasons), "review_reasons": reasons, "frame_issue": None,
                               "ood_score": 0.1, "boxes": [], "latency_ms": 3.0, "model_version": 7,
                               "model_version_number": 2},
                "kept": bool(reasons), "image_id": 41 if reasons else None,
            })
        return answers


@pytest.fixture
def fake_classifier() -> FakeClassifier:
    return FakeClassifier()


@pytest.fixture
def broker(tmp_path):
    server = PrivateBroker(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()
