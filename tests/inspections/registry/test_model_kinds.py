"""A model version's kind: one active classifier and one active anomaly model side by side, promoted,
rolled back and registered each by its own kind; what reads "the active version" reads the classifier."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction

from inspections.errors import Conflict
from inspections.models import ModelVersion, ModelVersionKind, ModelVersionStatus
from inspections.registry.selectors import active_model_version
from inspections.registry.services.model_versions import (model_version_promote, model_version_register,
                                                          model_version_rollback)
from mlcore.artefact import ANOMALY_FEATURES_FILE, ANOMALY_MEMORY_FILE, CONFIG_FILE
from tests.factories import AnomalyVersionFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_promoting_an_anomaly_model_leaves_the_classifier_active(no_queue):
    classifier = model_version_promote(version=ModelVersionFactory())
    anomaly = model_version_promote(version=AnomalyVersionFactory())
    assert set(ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE)) == {classifier, anomaly}
    assert active_model_version() == classifier
    assert active_model_version(kind=ModelVersionKind.ANOMALY) == anomaly


def test_a_second_anomaly_model_replaces_the_first_only(no_queue):
    classifier = model_version_promote(version=ModelVersionFactory())
    first = model_version_promote(version=AnomalyVersionFactory())
    second = model_version_promote(version=AnomalyVersionFactory())
    first.refresh_from_db()
    assert (first.status, first.retirement) == (ModelVersionStatus.RETIRED, "replaced")
    assert set(ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE)) == {classifier, second}


def test_the_database_refuses_two_active_versions_of_one_kind():
    AnomalyVersionFactory(status=ModelVersionStatus.ACTIVE)
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        AnomalyVersionFactory(status=ModelVersionStatus.ACTIVE)


def test_rollback_of_a_kind_restores_that_kinds_previous_version(no_queue):
    classifier = model_version_promote(version=ModelVersionFactory())
    first = model_version_promote(version=AnomalyVersionFactory())
    model_version_promote(version=AnomalyVersionFactory())
    assert model_version_rollback(kind=ModelVersionKind.ANOMALY) == first
    assert active_model_version() == classifier
    with pytest.raises(Conflict) as nothing:
        model_version_rollback()  # the classifier never had a predecessor
    assert nothing.value.code == "no_previous_version"


def _anomaly_artefact(folder, **config):
    folder.mkdir()
    (folder / CONFIG_FILE).write_text(json.dumps({
        "kind": "anomaly", "format": 1, "threshold": 2.5, "false_alarm_rate": 0.05,
        "backbone": {"name": "efficientnet_lite0", "weight_source": {"kind": "imagenet"}, "input_shape": [64, 64]},
        "calibration": {"images": 19}, "training": {"good_images": {"train": 12, "calibration": 19}}, **config}))
    (folder / ANOMALY_FEATURES_FILE).write_bytes(b"features")
    (folder / ANOMALY_MEMORY_FILE).write_bytes(b"memory")
    return folder


def test_an_anomaly_artefact_registers_as_an_anomaly_version_by_its_config(tmp_path):
    version = model_version_register(model_dir=_anomaly_artefact(tmp_path / "anomaly"))
    assert (version.kind, version.classes, version.status) == (ModelVersionKind.ANOMALY, [], ModelVersionStatus.CANDIDATE)
    assert version.metrics["anomaly"]["threshold"] == 2.5
    assert version.metrics["anomaly"]["good_images"] == {"train": 12, "calibration": 19}


def test_an_incomplete_anomaly_artefact_is_refused_before_anything_is_stored(tmp_path):
    from inspections.errors import ApplicationError

    folder = _anomaly_artefact(tmp_path / "anomaly")
    (folder / ANOMALY_MEMORY_FILE).unlink()
    with pytest.raises(ApplicationError) as refused:
        model_version_register(model_dir=folder)
    assert refused.value.code == "invalid_artefact" and ANOMALY_MEMORY_FILE in refused.value.message
    assert not ModelVersion.objects.exists()


def test_register_model_command_says_it_registered_an_anomaly_model(tmp_path, capsys):
    from django.core.management import call_command

    call_command("register_model", str(_anomaly_artefact(tmp_path / "anomaly")), "--promote")
    assert "(anomaly model, efficientnet_lite0), status active" in capsys.readouterr().out
    assert active_model_version(kind=ModelVersionKind.ANOMALY) is not None
    assert active_model_version() is None


def test_the_version_page_shows_an_anomaly_gates_figures_and_no_classifier_sections(client, no_queue):
    from django.urls import reverse

    from mlcore.anomaly_gate import decide_anomaly
    from tests.factories import UserFactory

    champion = model_version_promote(version=AnomalyVersionFactory())
    decision = decide_anomaly(candidate_good=[0.5] * 12, candidate_defects=[2.0] * 6, champion_good=[0.5] * 12,
                              champion_defects=[2.0] * 5 + [0.5]).to_dict()
    decision.update(promoted=True, champion_version=champion.number, defect_classes={"inclusion": 6})
    version = AnomalyVersionFactory(metrics={"anomaly": {"threshold": 3.25, "false_alarm_rate": 0.01,
                                                         "good_images": {"train": 80, "calibration": 99}},
                                             "gate": decision})
    client.force_login(UserFactory(roles=["viewer"]))
    page = client.get(reverse("registry:model-version", args=[version.pk])).content.decode()
    assert 'id="anomaly-gate"' in page and "1 of 6" in page and "0 of 6" in page  # misses: candidate 0, active 1
    assert "inclusion 6" in page and "3.2500" in page and "80 good (no_defect) images" in page
    assert "Confusion matrix" not in page and "compare-with-active" not in page


def test_the_training_pages_anomaly_form_starts_an_anomaly_run(client, tmp_path, no_queue):
    from django.urls import reverse

    from inspections.catalog.services.dataset_import import dataset_import_folder
    from inspections.models import TrainingRun
    from tests.data import good_and_defect_folders
    from tests.factories import UserFactory

    good_and_defect_folders(tmp_path / "data", good=30, defects=2)
    dataset_import_folder(root=tmp_path / "data")
    client.force_login(UserFactory(roles=["ml_admin"]))
    page = client.get(reverse("registry:training-runs")).content.decode()
    assert 'id="start-anomaly"' in page and 'name="false_alarm_rate"' in page
    response = client.post(reverse("registry:training-run-start"), {"kind": "anomaly", "false_alarm_rate": "0.2",
                                                                    "input_size": ""})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/training/{run.pk}/")
    assert (run.kind, run.parameters["false_alarm_rate"], run.parameters["input_size"]) == ("anomaly", 0.2, 224)
