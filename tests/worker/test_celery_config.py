from steelqc.celery import app
from worker.tasks.health import ping


def test_messages_are_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_broker_is_redis_in_tests():
    assert app.conf.broker_url.startswith("redis://127.0.0.1")


def test_inference_and_training_queues_are_declared_and_routed():
    assert {queue.name for queue in app.conf.task_queues} == {"inference", "training"}
    router = app.amqp.router
    assert router.route({}, "worker.tasks.inference.predict_images")["queue"].name == "inference"
    assert router.route({}, "worker.tasks.training.run_training")["queue"].name == "training"


def test_one_message_at_a_time_per_worker_process():
    # Long tasks must not sit prefetched behind a busy process.
    assert app.conf.worker_prefetch_multiplier == 1


def test_health_task_time_limits_are_applied():
    task = app.tasks[ping.name]
    assert (task.soft_time_limit, task.time_limit) == (20, 30)


def test_inference_task_acks_late_and_requeues_when_its_worker_dies(settings):
    from worker.tasks.inference import predict_images

    task = app.tasks[predict_images.name]
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert (task.soft_time_limit, task.time_limit) == (
        settings.STEELQC_INFERENCE_SOFT_TIME_LIMIT, settings.STEELQC_INFERENCE_TIME_LIMIT,
    )
    assert task.soft_time_limit < task.time_limit


def test_every_periodic_job_names_a_registered_task():
    from inspections.ops.services.schedules import PERIODIC_JOBS

    app.loader.import_default_modules()  # what a worker does with CELERY_IMPORTS at start
    assert {job.task for job in PERIODIC_JOBS} <= set(app.tasks)
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    # Nothing in the static schedule: it would overwrite admin edits each time beat starts.
    assert app.conf.beat_schedule == {}
