import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from inspections.models import ModelVersionStatus
from inspections.services.reviews import review_submit
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
    assert 'data-metric="backlog-left">1<' in html
    assert 'data-metric="accuracy">87.5%<' in html
    per_class = html[html.index('id="per-class-metrics"'):]
    assert "<td>inclusion</td><td>100.0%</td><td>75.0%</td>" in per_class
    assert html.count('<svg class="chart"') == 2
    assert "1 in the last 24 hours" in html
    assert "50.0%" in html  # half of the predictions need review (the trend point's tooltip)
    assert "confusion-table" in html  # no picture stored: the matrix as a table


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
