"""One view serves a model version's plots: the model page's and the dashboard's links give the
same picture with the same rules."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import resolve, reverse

from mlcore.artefact import CONFUSION_PLOT_FILE, CURVES_PLOT_FILE
from tests.factories import ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 16


@pytest.fixture
def version_with_plots():
    version = ModelVersionFactory()
    default_storage.save(f"{version.artifact_path}/{CONFUSION_PLOT_FILE}", ContentFile(PNG + b"confusion"))
    default_storage.save(f"{version.artifact_path}/{CURVES_PLOT_FILE}", ContentFile(PNG + b"curves"))
    return version


def test_the_dashboard_and_the_model_page_link_to_one_view(version_with_plots):
    dashboard = reverse("inspections:model-confusion-matrix", args=[version_with_plots.pk])
    registry = reverse("registry:model-version-plot", args=[version_with_plots.pk, "confusion_matrix"])
    assert resolve(dashboard).func is resolve(registry).func


def test_both_links_serve_the_confusion_matrix_file_and_the_curves_have_their_own(client, version_with_plots):
    client.force_login(UserFactory(roles=["viewer"]))
    dashboard = client.get(reverse("inspections:model-confusion-matrix", args=[version_with_plots.pk]))
    registry = client.get(reverse("registry:model-version-plot", args=[version_with_plots.pk, "confusion_matrix"]))
    curves = client.get(reverse("registry:model-version-plot", args=[version_with_plots.pk, "training_curves"]))
    assert b"".join(dashboard.streaming_content) == b"".join(registry.streaming_content) == PNG + b"confusion"
    assert b"".join(curves.streaming_content) == PNG + b"curves"
    assert dashboard["Content-Type"] == "image/png" and "max-age" in dashboard["Cache-Control"]


def test_a_version_without_the_plot_is_a_404(client):
    client.force_login(UserFactory(roles=["viewer"]))
    version = ModelVersionFactory()
    assert client.get(reverse("inspections:model-confusion-matrix", args=[version.pk])).status_code == 404
