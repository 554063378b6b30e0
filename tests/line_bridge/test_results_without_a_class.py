"""A result with no class (an anomaly model answering alone, no classifier active) is published and
logged without failing: OPC UA gets an empty label and 0.0, the log line says "no class"."""

from __future__ import annotations

from inspections.line.bridge.opcua import _values
from inspections.line.bridge.runner import _last_text

RESULT = {"filename": "t.png", "sha256": "a" * 64, "label": None, "confidence": None, "review_reasons": ["anomaly"],
          "needs_review": True, "kept": True, "image_id": 7, "model_version": 3, "boxes": [],
          "at": "2026-12-07T10:00:00+00:00"}


def test_opcua_values_of_a_result_without_a_class():
    values = _values(RESULT)
    assert (values["last_label"], values["last_confidence"], values["last_needs_review"]) == ("", 0.0, True)


def test_the_log_line_says_no_class():
    assert _last_text(RESULT).startswith("no class, reasons ['anomaly']")
    assert _last_text({**RESULT, "label": "crazing", "confidence": 0.9}).startswith("crazing 0.90")
    assert _last_text(None) == "none"
