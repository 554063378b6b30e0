"""version_predict_files: the one way the gate and comparisons predict files with a version,
through the process's one classifier cache (``classifier_for_version``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from inspections.registry.services import classifiers
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


class FakeClassifier:
    def __init__(self, version, detection_head=None):
        self.version, self.detection_head = version, detection_head

    def predict_files(self, paths):
        return [SimpleNamespace(label=f"{self.version.name}:{path}", confidence=0.5) for path in paths]


@pytest.fixture
def loads(monkeypatch):
    """The versions loaded from their artefacts, in order (the process cache starts empty)."""
    loaded = []

    def load(version):
        loaded.append(version.number)
        return FakeClassifier(version)

    monkeypatch.setattr(classifiers, "_loaded", None)
    monkeypatch.setattr(classifiers, "_load", load)
    return loaded


def test_the_version_the_process_serves_is_not_loaded_again(loads):
    served = ModelVersionFactory()
    classifier = classifiers.classifier_for_version(version=served)
    predictions = classifiers.version_predict_files(version=served, paths=["a.png", "b.png"])
    assert loads == [served.number]
    assert [r.label for r in predictions.results] == [f"{served.name}:a.png", f"{served.name}:b.png"]
    assert classifiers.classifier_for_version(version=served) is classifier


def test_another_version_is_loaded_for_the_call_and_leaves_the_served_one_cached(loads):
    served, other = ModelVersionFactory(), ModelVersionFactory()
    classifier = classifiers.classifier_for_version(version=served)
    predictions = classifiers.version_predict_files(version=other, paths=["a.png"])
    assert [r.label for r in predictions.results] == [f"{other.name}:a.png"]
    assert classifiers.classifier_for_version(version=served) is classifier
    assert loads == [served.number, other.number]


def test_says_whether_the_version_detects_boxes(monkeypatch):
    plain, boxed = ModelVersionFactory(), ModelVersionFactory()
    monkeypatch.setattr(classifiers, "_loaded", None)
    monkeypatch.setattr(classifiers, "_load", lambda version: FakeClassifier(version, object() if version == boxed else None))
    assert classifiers.version_predict_files(version=boxed, paths=[]).detects_boxes is True
    assert classifiers.version_predict_files(version=plain, paths=[]).detects_boxes is False
