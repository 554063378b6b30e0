"""Model registry and training pages: everyone with a role reads, only ml_admin acts."""

import pytest
from django.urls import reverse

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import ModelVersionStatus, TrainingRun, TrainingRunStatus, TrainingRunTrigger
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from tests.conftest import tiny_dataset
from tests.factories import ModelVersionFactory, UserFactory

pytestmark = pytest.mark.django_db




def _client(client, role):
    user = UserFactory(roles=[role])
    client.force_login(user)
    return user


def test_viewer_sees_versions_with_metrics_but_no_actions(client):
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE, metrics={"accuracy": 0.9954, "macro_f1": 0.99})
    candidate = ModelVersionFactory(metrics={"accuracy": 0.5, "gate": {"promoted": False, "reasons": ["recall of patches dropped"]}})
    _client(client, "viewer")
    page = client.get(reverse("registry:model-versions")).content.decode()
    assert "99.54%" in page and "held back" in page
    assert ">Promote<" not in page and "Roll back" not in page
    response = client.post(reverse("registry:model-version-promote", args=[candidate.pk]))
    assert response.status_code == 403
    candidate.refresh_from_db()
    assert candidate.status == ModelVersionStatus.CANDIDATE


def test_ml_admin_promotes_and_rolls_back_from_the_page(client, no_queue):
    first = ModelVersionFactory()
    second = ModelVersionFactory()
    model_version_promote(version=first)
    _client(client, "ml_admin")
    assert ">Promote<" in client.get(reverse("registry:model-versions")).content.decode()
    client.post(reverse("registry:model-version-promote", args=[second.pk]))
    second.refresh_from_db()
    assert second.status == ModelVersionStatus.ACTIVE
    assert f"Roll back to {first.name} (active before {second.name})" in client.get(
        reverse("registry:model-versions")).content.decode()
    response = client.post(reverse("registry:model-version-rollback"), follow=True)
    first.refresh_from_db()
    assert first.status == ModelVersionStatus.ACTIVE
    assert f"{first.name} is active again" in response.content.decode()


def test_version_page_shows_gate_reasons_per_class_metrics_and_serves_its_plots(client, no_queue, tiny_model_dirs):
    version = model_version_register(model_dir=tiny_model_dirs[0])
    version.metrics = {**version.metrics, "gate": {"promoted": False, "passed": False, "reasons": ["recall of crazing fell"],
                                                  "new_class_recall": {}}}
    version.save()
    _client(client, "qa")
    page = client.get(reverse("registry:model-version", args=[version.pk])).content.decode()
    assert "recall of crazing fell" in page
    assert "inclusion" in page and "Support" in page
    assert "imagenet" in page and version.weight_source["sha256"] in page
    plot = client.get(reverse("registry:model-version-plot", args=[version.pk, "confusion_matrix"]))
    assert plot.status_code == 200
    assert b"".join(plot.streaming_content).startswith(b"\x89PNG")
    assert client.get(reverse("registry:model-version-plot", args=[version.pk, "secrets"])).status_code == 404


def test_ml_admin_starts_a_run_from_the_page_and_cancels_it(client, no_queue, tmp_path, settings):
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 1  # 10 a class split 7/2/1
    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    user = _client(client, "ml_admin")
    response = client.post(reverse("registry:training-run-start"), {"backbone": "efficientnet_lite0", "finetune": "off",
                                                                "head_epochs": "40"})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("registry:training-run", args=[run.pk])
    assert run.requested_by == user
    assert run.parameters["head_epochs"] == 40 and run.parameters["finetune"] == "off"
    # The bar moving with a real worker is tests/e2e/test_training_progress.py; here, the frozen snapshot.
    assert "20 images: crazing" in client.get(response["Location"]).content.decode()
    client.post(reverse("registry:training-run-cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.CANCELLED


def test_a_refused_start_is_explained_on_the_page(client, no_queue):
    _client(client, "ml_admin")
    response = client.post(reverse("registry:training-run-start"), {"backbone": "auto"}, follow=True)
    assert "at least two classes" in response.content.decode()
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("role", ["qa", "viewer", "integrator"])
def test_only_ml_admin_may_start_or_cancel_training(client, role):
    run = TrainingRun.objects.create(status=TrainingRunStatus.QUEUED)
    _client(client, role)
    assert client.post(reverse("registry:training-run-start"), {"backbone": "auto"}).status_code == 403
    assert client.post(reverse("registry:training-run-cancel", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.QUEUED
    assert "Start training" not in client.get(reverse("registry:training-runs")).content.decode()


def test_runs_say_who_started_them(client):
    TrainingRun.objects.create(status=TrainingRunStatus.SUCCEEDED, trigger=TrainingRunTrigger.SCHEDULE)
    command_run = TrainingRun.objects.create(status=TrainingRunStatus.SUCCEEDED, trigger=TrainingRunTrigger.COMMAND)
    _client(client, "viewer")
    page = client.get(reverse("registry:training-runs")).content.decode()
    assert f"<td>{TrainingRunTrigger.SCHEDULE.label}</td>" in page and f"<td>{TrainingRunTrigger.COMMAND.label}</td>" in page
    detail = client.get(reverse("registry:training-run", args=[command_run.pk])).content.decode()
    assert f"by {TrainingRunTrigger.COMMAND.label}</dd>" in detail


def test_a_backbone_without_weights_cannot_be_started_from_the_page(client, no_queue, settings, tmp_path):
    settings.STEELQC_RESNET50_WEIGHTS = str(tmp_path / "absent.h5")
    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    _client(client, "ml_admin")
    response = client.post(reverse("registry:training-run-start"), {"backbone": "resnet50"}, follow=True)
    assert "backbone: Select a valid choice. resnet50 is not one of the available choices." in response.content.decode()
    assert not TrainingRun.objects.exists()


def _registry_state(client) -> str:
    page = client.get(reverse("registry:model-versions")).content.decode()
    start = page.index('id="registry-state"')
    return " ".join(page[start:page.index("</p>", start)].split()), page


def test_models_page_with_no_versions_names_the_run_training_the_first_one(client):
    run = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, phase="head", progress=0.2)
    _client(client, "ml_admin")
    state, page = _registry_state(client)
    assert f"No model versions yet: <a href=\"/training/{run.pk}/\">training run {run.pk}</a> is training the first one." in state
    assert "Exactly one version" not in page and "Roll back" not in page and "Start a" not in page


def test_models_page_with_candidates_only_says_none_is_active(client):
    ModelVersionFactory()
    _client(client, "ml_admin")
    state, page = _registry_state(client)
    assert "No version is active" in state
    assert "Roll back" not in page


def test_models_page_names_the_active_version_and_offers_no_rollback_without_an_earlier_one(client, no_queue):
    version = model_version_promote(version=ModelVersionFactory())
    _client(client, "ml_admin")
    state, page = _registry_state(client)
    assert f"<strong>{version.name}</strong> is the active version" in state
    assert "Roll back" not in page
