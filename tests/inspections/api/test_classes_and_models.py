"""classes/, model-versions/ (promote, roll back) and training-runs/."""

from __future__ import annotations

import pytest

from inspections.models import DefectClass, ModelVersion, TrainingRun
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import ModelVersionFactory, TrainingRunFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_classes_list_has_every_class_with_its_state():
    DefectClass.objects.create(name="old_dent", active=False)
    body = client_for("viewer").get("/api/v1/classes/").json()
    by_name = {c["name"]: c for c in body}
    assert {"crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"} <= set(by_name)
    assert by_name["old_dent"]["active"] is False and by_name["crazing"]["active"] is True


def test_create_class_normalises_the_name():
    response = client_for("qa").post("/api/v1/classes/", {"name": " Edge Crack ", "description": "near the edge"}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["description"]) == ("edge_crack", "near the edge")
    assert DefectClass.objects.get(name="edge_crack").active


def test_create_existing_class_is_409():
    assert_error(client_for("qa").post("/api/v1/classes/", {"name": "crazing"}, format="json"), 409, "already_exists")
    assert DefectClass.objects.filter(name="crazing").count() == 1


@pytest.mark.parametrize("name", ["bad/name", "-leading-dash", "x" * 65, ""])
def test_create_class_with_invalid_name_is_400(name):
    response = client_for("ml_admin").post("/api/v1/classes/", {"name": name}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid", "invalid_class_name"}
    assert not DefectClass.objects.filter(name=name.lower()).exists()


def test_a_100_kb_class_description_is_refused_and_nothing_is_made():
    response = client_for("qa").post("/api/v1/classes/", {"name": "long_one", "description": "x" * 100_000},
                                     format="json")
    error = assert_error(response, 400, "description_too_long")
    assert "description" in error["details"]
    assert not DefectClass.objects.filter(name="long_one").exists()


def test_a_description_of_exactly_the_limit_is_kept():
    from inspections.catalog.services.classes import DESCRIPTION_MAX_LENGTH

    text = "y" * DESCRIPTION_MAX_LENGTH
    response = client_for("qa").post("/api/v1/classes/", {"name": "at_limit", "description": f"  {text} "},
                                     format="json")
    assert response.status_code == 201, response.content[:300]
    assert DefectClass.objects.get(name="at_limit").description == text
    assert_error(client_for("qa").post("/api/v1/classes/", {"name": "over_limit", "description": text + "y"},
                                       format="json"), 400, "description_too_long")


def test_the_schema_states_the_description_limit():
    schema = client_for("viewer").get("/api/v1/schema/?format=json").json()
    description = schema["components"]["schemas"]["DefectClassInputRequest"]["properties"]["description"]
    assert "at most 1000 characters" in description["description"]


def test_model_version_detail_has_backbone_weights_classes_metrics_status():
    version = ModelVersionFactory(metrics={"accuracy": 0.97, "macro_f1": 0.96},
                                  weight_source={"kind": "imagenet", "file": "lite0.pth", "sha256": "ab" * 32})
    run = TrainingRunFactory(model_version=version)
    body = client_for("viewer").get(f"/api/v1/model-versions/{version.pk}/").json()
    assert body["backbone"] == "efficientnet_lite0"
    assert body["weight_source"] == {"kind": "imagenet", "file": "lite0.pth", "sha256": "ab" * 32}
    assert body["classes"] == ["crazing", "inclusion"]
    assert body["metrics"]["accuracy"] == 0.97
    assert (body["status"], body["number"], body["name"]) == ("candidate", version.number, f"v{version.number}")
    assert body["training_run"] == run.pk


def test_model_version_list_is_newest_first():
    versions = [ModelVersionFactory() for _ in range(3)]
    body = client_for("viewer").get("/api/v1/model-versions/").json()
    assert [v["id"] for v in body["results"]] == [v.pk for v in reversed(versions)]


def test_unknown_model_version_is_404():
    assert_error(client_for("viewer").get("/api/v1/model-versions/123456/"), 404, "not_found")
    assert_error(client_for("ml_admin").post("/api/v1/model-versions/123456/promote/"), 404, "not_found")


def test_promote_then_roll_back():
    first, second = ModelVersionFactory(), ModelVersionFactory()
    admin = client_for("ml_admin")
    assert admin.post(f"/api/v1/model-versions/{first.pk}/promote/").json()["status"] == "active"
    promoted = admin.post(f"/api/v1/model-versions/{second.pk}/promote/")
    assert promoted.status_code == 200 and promoted.json()["id"] == second.pk
    assert ModelVersion.objects.get(status="active") == second
    rolled_back = admin.post("/api/v1/model-versions/rollback/")
    assert rolled_back.status_code == 200
    assert rolled_back.json()["id"] == first.pk and rolled_back.json()["status"] == "active"
    assert ModelVersion.objects.get(status="active") == first
    assert ModelVersion.objects.get(pk=second.pk).status == "retired"


def test_rollback_without_an_earlier_version_is_an_error_body():
    model_version_promote(version=ModelVersionFactory())
    response = client_for("ml_admin").post("/api/v1/model-versions/rollback/")
    assert response.status_code in {400, 409}
    assert response.json()["error"]["code"] == "no_previous_version"


def test_training_runs_list_and_detail():
    run = TrainingRunFactory(status="running", progress=0.4, phase="head", log="epoch 1\nepoch 2",
                             gate_decision={"passed": True, "reasons": []})
    viewer = client_for("viewer")
    listed = viewer.get("/api/v1/training-runs/").json()
    assert [r["id"] for r in listed["results"]] == [run.pk]
    assert "log" not in listed["results"][0]
    detail = viewer.get(f"/api/v1/training-runs/{run.pk}/").json()
    assert (detail["status"], detail["progress"], detail["phase"]) == ("running", 0.4, "head")
    assert detail["gate_decision"] == {"passed": True, "reasons": []}
    assert detail["log"] == "epoch 1\nepoch 2"


def test_a_second_training_run_is_refused_while_one_is_running():
    run = TrainingRunFactory(status="running")
    admin = client_for("ml_admin")
    error = assert_error(admin.post("/api/v1/training-runs/", {}, format="json"), 409, "training_in_progress")
    assert error["details"]["run"] == run.pk
    assert TrainingRun.objects.count() == 1


def test_starting_training_freezes_the_labelled_images_and_queues_the_run(no_queue, tmp_path, settings,
                                                                          django_capture_on_commit_callbacks):
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 1  # 10 a class split 7/2/1
    from inspections import task_names
    from inspections.catalog.services.dataset_import import dataset_import_folder
    from tests.conftest import tiny_dataset

    tiny_dataset(tmp_path / "data", per_class=10)
    dataset_import_folder(root=tmp_path / "data")
    admin = client_for("ml_admin")
    no_queue.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/api/v1/training-runs/",
                              {"parameters": {"head_epochs": 50, "backbone": "efficientnet_lite0"}}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["parameters"]["head_epochs"] == 50
    run = TrainingRun.objects.get(pk=body["id"])
    assert run.snapshot.image_count == 20
    assert run.requested_by == admin.user
    assert no_queue == [(task_names.RUN_TRAINING, {"run_id": run.pk}, task_names.TRAINING_QUEUE)]


def test_bad_training_parameters_are_a_400_and_start_nothing():
    admin = client_for("ml_admin")
    assert_error(admin.post("/api/v1/training-runs/", {"parameters": {"backbone": "vgg"}}, format="json"), 400,
                 "invalid_parameter")
    assert not TrainingRun.objects.exists()


def test_cancelling_a_queued_run_cancels_it_and_a_finished_run_is_409():
    run = TrainingRunFactory(status="queued")
    admin = client_for("ml_admin")
    response = admin.post(f"/api/v1/training-runs/{run.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    run.refresh_from_db()
    assert run.cancel_requested is True
    assert_error(admin.post(f"/api/v1/training-runs/{run.pk}/cancel/"), 409, "not_cancellable")


def test_cancelling_an_unknown_training_run_is_404():
    assert_error(client_for("ml_admin").post("/api/v1/training-runs/999999/cancel/"), 404, "not_found")
