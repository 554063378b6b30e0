"""GET drift/: the dashboard's drift figures as JSON, for any role; bad parameters are a 400."""

from __future__ import annotations

import pytest
from django.utils import timezone

from inspections.models import DefectClass, DriftAlert, ModelVersionStatus, Prediction
from tests.factories import InspectionImageFactory, ModelVersionFactory

from .conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/drift/"


@pytest.fixture
def figures():
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics={
        "split": "test", "review": {"reasons": {"foreign": 0.05}},
        "per_class": {"crazing": {"support": 1}, "inclusion": {"support": 1}}})
    for source, label, reasons in (("line-1", "crazing", ["foreign"]), ("line-1", "crazing", []),
                                   ("line-1", "inclusion", []), ("line-1", "inclusion", []),
                                   ("line-2", "inclusion", [])):
        Prediction.objects.create(
            image=InspectionImageFactory(source=source), model_version=version,
            label=DefectClass.objects.get_or_create(name=label)[0], confidence=0.9, probabilities={label: 0.9},
            needs_review=bool(reasons), ood_score=0.5, review_reasons=reasons)
    DriftAlert.objects.create(source="line-1", model_version=version, opened_at=timezone.now(), window_hours=24,
                              threshold=0.2, foreign_share=0.25, image_count=4, baseline_foreign_share=0.05)
    return version


@pytest.mark.parametrize("role", ["viewer", "integrator", "qa", "ml_admin"])
def test_every_role_reads_the_figures_against_the_baseline(role, figures):
    body = client_for(role).get(URL, {"days": 7}).json()
    assert body["model_version"] == {"id": figures.pk, "number": figures.number}
    assert body["baseline"]["foreign_share"] == 0.05
    assert body["baseline"]["class_mix"] == {"crazing": 0.5, "inclusion": 0.5}
    today = timezone.localdate().isoformat()
    assert [(row["day"], row["source"], row["images"], row["foreign"]) for row in body["days"]] == [
        (today, "line-1", 4, 1), (today, "line-2", 1, 0)]
    line_1 = body["days"][0]
    assert line_1["foreign_share"] == 0.25
    assert line_1["class_mix"] == {"crazing": 0.5, "inclusion": 0.5}
    assert line_1["class_mix_distance"] == 0.0
    assert body["days"][1]["class_mix_distance"] == 0.5
    assert [(alert["source"], alert["foreign_share"]) for alert in body["open_alerts"]] == [("line-1", 0.25)]
    assert set(body["settings"]) == {"foreign_share_threshold", "window_hours", "min_images"}


def test_one_source_only(figures):
    body = client_for("viewer").get(URL, {"source": "line-2"}).json()
    assert [row["source"] for row in body["days"]] == ["line-2"]
    assert [row["source"] for row in body["sources"]] == ["line-2"]
    assert body["open_alerts"] == []


def test_without_an_active_version_the_figures_are_empty_not_an_error():
    body = client_for("viewer").get(URL).json()
    assert (body["model_version"], body["baseline"], body["days"], body["sources"]) == (None, None, [], [])


def test_anonymous_callers_are_refused():
    assert_error(client_for(None).get(URL), 401)


@pytest.mark.parametrize("query", [{"days": "abc"}, {"days": 0}, {"days": 91}, {"days": "-3"}, {"source": "x" * 101}])
def test_bad_parameters_are_a_400_in_the_error_shape(query):
    error = assert_error(client_for("viewer").get(URL, query), 400)
    assert set(error["details"]) == set(query)
