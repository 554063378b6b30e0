from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from inspections.models import ModelVersionStatus
from inspections.review.services.reviews import review_submit
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db

METRICS = {
    "accuracy": 0.875, "macro_f1": 0.86, "count": 8, "classes": ["crazing", "inclusion"],
    "per_class": {"crazing": {"precision": 0.8, "recall": 1.0, "f1": 0.89, "support": 4},
                  "inclusion": {"precision": 1.0, "recall": 0.75, "f1": 0.86, "support": 4}},
    "confusion_matrix": [[4, 0], [1, 3]],
}


def test_dashboard_shows_backlog_throughput_trend_and_model_metrics(client, role_user, predicted_image):
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics=METRICS, promoted_at=timezone.now())
    image = predicted_image({"crazing": 0.5, "inclusion": 0.5}, needs_review=True, version=version)
    predicted_image({"crazing": 0.9, "inclusion": 0.1}, version=version)
    review_submit(image=image, label_name="crazing", reviewer=role_user("qa"), expected_version=0)
    client.force_login(role_user("viewer"))
    html = client.get("/dashboard/").content.decode()
    assert 'data-count="need_person" title="flagged by the model, a suspect label, or unlabelled"><strong>1</strong>' in html
    assert 'data-metric="accuracy">87.5%<' in html
    per_class = html[html.index('id="per-class-metrics"'):]
    assert "<td>inclusion</td><td>100.0%</td><td>75.0%</td>" in per_class
    assert html.count('<svg class="chart"') == 3  # throughput, trend, and drift of the one source
    assert "1 in the last 24 hours" in html
    assert "confusion-table" in html  # no picture stored: the matrix as a table


def _trend_points(html: str, series: str) -> list[str]:
    """The tooltips of one trend line's points, oldest first."""
    import re

    return re.findall(rf'<circle class="series-{series}"[^>]*><title>[^:<]+: ([0-9.]+%)</title>', html)


@pytest.mark.parametrize("unit, step", [("day", timedelta(days=2)), ("hour", timedelta(hours=3))])
def test_trend_has_one_point_per_time_bucket_with_its_share_and_confidence(client, role_user, predicted_image,
                                                                           unit, step):
    from inspections.models import Prediction

    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics=METRICS)
    noon = timezone.localtime().replace(hour=12, minute=30, second=0, microsecond=0)
    buckets = [  # (buckets back from the newest, [(confidence, needs_review), ...])
        (2, [(0.5, True), (0.9, False)]),
        (1, [(0.6, True)]),
        (0, [(0.8, False), (0.7, False), (0.9, False), (0.8, False)]),
    ]
    for back, predictions in buckets:
        for confidence, needs_review in predictions:
            image = predicted_image({"crazing": confidence, "inclusion": 1 - confidence}, needs_review=needs_review,
                                    version=version)
            Prediction.objects.filter(image=image).update(created_at=noon - back * step)
    old = predicted_image({"crazing": 0.1, "inclusion": 0.9}, needs_review=True, version=version)
    Prediction.objects.filter(image=old).update(created_at=noon - timedelta(days=45))  # outside the 30 days
    client.force_login(role_user("viewer"))
    html = client.get("/dashboard/").content.decode()
    assert f"(per {unit}, last 30 days)" in html
    assert _trend_points(html, "review") == ["50.0%", "100.0%", "0.0%"]
    assert _trend_points(html, "confidence") == ["70.0%", "60.0%", "80.0%"]


def test_confusion_matrix_picture_comes_from_the_artefact(client, role_user):
    version = ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics=METRICS, artifact_path="models/dash-test")
    default_storage.save("models/dash-test/confusion_matrix.png", ContentFile(b"\x89PNG fake"))
    try:
        client.force_login(role_user("viewer"))
        html = client.get("/dashboard/").content.decode()
        assert f'src="/models/{version.pk}/confusion-matrix.png"' in html
        response = client.get(f"/models/{version.pk}/confusion-matrix.png")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert b"".join(response.streaming_content) == b"\x89PNG fake"
    finally:
        default_storage.delete("models/dash-test/confusion_matrix.png")


def test_dashboard_without_a_model_or_data_still_renders(client, role_user):
    client.force_login(role_user("integrator"))
    html = client.get("/dashboard/").content.decode()
    assert "No model version is active yet." in html
    assert "No predictions in the last 30 days." in html
