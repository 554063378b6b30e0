"""Faults against the real processes: killed workers, a restarted broker, dropped database
connections. Each must lose nothing and duplicate nothing."""

import signal
import time

import pytest
from django.db import connection

from benchmarks.api_client import ApiClient
from inspections.access.services.api_tokens import api_token_create
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.catalog.services.images import image_upload
from inspections.models import (
    ImageStatus,
    InspectionImage,
    ModelVersion,
    ModelVersionStatus,
    Prediction,
    TrainingRun,
    TrainingRunStatus,
)
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.registry.services.training import training_run_start, training_runs_fail_stale
from inspections.review.services.inference import pending_images_requeue
from tests.conftest import TINY_TRAINING_PARAMS, wait_for
from tests.data import tiny_dataset
from tests.factories import UserFactory, image_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]




def _exactly_one_prediction_each(image_ids) -> bool:
    counts = {i: 0 for i in image_ids}
    for image_id in Prediction.objects.filter(image_id__in=image_ids).values_list("image_id", flat=True):
        counts[image_id] += 1
    assert max(counts.values()) <= 1, "an image got two predictions from one version"
    return min(counts.values()) == 1


def test_inference_worker_killed_during_a_batch_every_image_gets_one_prediction(celery_worker, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    celery_worker.stop()
    ids = [image_upload(content=image_bytes(seed=9000 + i, size=(48, 48)), filename=f"{i}.png", uploaded_by=None).image.id
           for i in range(20)]
    marker = celery_worker.log_path.stat().st_size
    celery_worker.start()
    # The first task claims all 20 waiting images; the fresh process is still loading the model.
    wait_for(lambda: "predict_images" in celery_worker.log_path.read_text(errors="replace")[marker:], interval=0.02)
    celery_worker.kill(signal.SIGKILL)
    assert not Prediction.objects.filter(image_id__in=ids).exists()

    celery_worker.start()
    pending_images_requeue(older_than_s=0)
    wait_for(lambda: _exactly_one_prediction_each(ids))
    time.sleep(2)  # late duplicates from re-delivered messages would show up now
    assert _exactly_one_prediction_each(ids)
    assert set(InspectionImage.objects.filter(id__in=ids).values_list("status", flat=True)) == {ImageStatus.PREDICTED}


def test_uploads_during_a_broker_restart_are_all_predicted(chaos_stack, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    token = api_token_create(user=UserFactory(roles=["integrator"]), name="test").secret
    api = ApiClient(chaos_stack["web"].port, token)
    statuses = []
    for i in range(24):
        if i == 8:
            chaos_stack["redis"].kill()
        if i == 16:
            chaos_stack["redis"].start()
        statuses.append(api.upload(image_bytes(seed=8000 + i, size=(48, 48)), f"{i}.png")[0])
    assert statuses == [201] * 24  # stored and answered even while the broker was down
    ids = list(InspectionImage.objects.values_list("id", flat=True))
    assert len(ids) == 24
    # Messages for uploads 8..15 were never queued; the sweeper (beat in the worker) re-queues them.
    wait_for(lambda: _exactly_one_prediction_each(ids), timeout=180)


def test_dropped_database_connections_fail_cleanly_and_recover(chaos_stack, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    token = api_token_create(user=UserFactory(roles=["integrator"]), name="test").secret
    api = ApiClient(chaos_stack["web"].port, token)
    assert api.request("GET", "/api/v1/images/")[0] == 200
    assert api.upload(image_bytes(seed=7000, size=(48, 48)), "a.png")[0] == 201

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # the web server's and the worker's connections

    answers = [api.request("GET", "/api/v1/images/")[0] for _ in range(3)]
    answers += [api.upload(image_bytes(seed=7001 + i, size=(48, 48)), f"b{i}.png")[0] for i in range(3)]
    assert all(code < 500 or code == 503 for code in answers), answers
    assert answers[-1] == 201 and answers[2] == 200  # recovered without a restart
    ids = list(InspectionImage.objects.values_list("id", flat=True))
    wait_for(lambda: _exactly_one_prediction_each(ids), timeout=120)


def test_training_worker_killed_marks_the_run_failed_and_keeps_the_active_version(celery_worker, tiny_model_dirs, tmp_path,
                                                                                   settings):
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 10, 3  # 20 a class: 14/3/3
    active = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    tiny_dataset(tmp_path / "data", per_class=20)
    dataset_import_folder(root=tmp_path / "data")
    params = {**TINY_TRAINING_PARAMS, "head_epochs": 1000, "head_patience": 1000, "augmented_views": 8}
    run = training_run_start(requested_by=None, params=params)
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == TrainingRunStatus.RUNNING)
    celery_worker.kill(signal.SIGKILL)
    celery_worker.start()
    time.sleep(3)
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.RUNNING  # nobody is running it any more, but nothing knows yet
    assert training_runs_fail_stale(older_than_s=2) == 1  # what the periodic check does
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.FAILED
    assert list(ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE)) == [active]
    assert run.model_version is None
