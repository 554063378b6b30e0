import json

import pytest
from django.core.management import CommandError, call_command

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import ModelVersionStatus, TrainingRun, TrainingRunStatus
from inspections.registry.selectors import model_version_file
from mlcore.artefact import MODEL_FILE, SERVING_FILE
from tests.conftest import TINY_TRAINING_PARAMS, tiny_dataset
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db




@pytest.fixture(autouse=True)
def small_classes_are_ready(settings):
    """The commands' logic on a 10-image-a-class set (7 train, 1 test each): ready by a lower rule."""
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 5, 1


def test_if_no_active_does_nothing_when_a_version_is_live(no_queue, capsys):
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    call_command("train_model", "--if-no-active")
    assert "no training started" in capsys.readouterr().out
    assert not TrainingRun.objects.exists()


def test_without_labelled_images_the_command_fails_with_the_reason(no_queue):
    with pytest.raises(CommandError, match="at least two classes"):
        call_command("train_model")


def test_wait_trains_in_process_and_promotes_the_first_version(no_queue, tmp_path, capsys):
    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    args = [f"--param={name}={value if isinstance(value, str) else json.dumps(value)}"
            for name, value in {**TINY_TRAINING_PARAMS, "serving_export": False}.items()]
    call_command("train_model", "--wait", *args)
    run = TrainingRun.objects.get()
    assert run.status == TrainingRunStatus.SUCCEEDED
    assert run.model_version.status == ModelVersionStatus.ACTIVE
    assert run.parameters["serving_export"] is False
    assert model_version_file(version=run.model_version, file_name=SERVING_FILE) is None
    assert model_version_file(version=run.model_version, file_name=MODEL_FILE)
    assert "promoted" in capsys.readouterr().out


def test_register_model_records_the_artefact_and_can_promote_it(no_queue, tiny_model_dirs, capsys):
    from inspections.models import ModelVersion

    call_command("register_model", str(tiny_model_dirs[0]), "--promote")
    version = ModelVersion.objects.get()
    assert version.status == ModelVersionStatus.ACTIVE
    assert version.classes == ["crazing", "inclusion"]
    assert "Registered v1" in capsys.readouterr().out
    with pytest.raises(CommandError, match="not a model artefact"):
        call_command("register_model", str(tiny_model_dirs[0].parent))


def test_a_queued_run_points_to_its_training_page(no_queue, tmp_path, capsys):
    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    call_command("train_model", "--if-no-active")
    run = TrainingRun.objects.get()
    out = capsys.readouterr().out
    assert f"follow it at http://127.0.0.1:8000/training/{run.pk}/" in out
    assert "/api/v1/" not in out and "admin" not in out


def test_the_demo_administrator_is_told_to_log_in_at_the_apps_login(capsys):
    call_command("ensure_demo_admin")
    assert "Log in at http://127.0.0.1:8000/accounts/login/ as admin / admin" in capsys.readouterr().out
    call_command("ensure_demo_admin")
    assert "log in with it at http://127.0.0.1:8000/accounts/login/" in capsys.readouterr().out
