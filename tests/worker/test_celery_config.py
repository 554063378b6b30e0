import ast
from pathlib import Path

import pytest
from celery.app.task import Task

from inspections import task_names
from steelqc.celery import app
from worker.task_options import TASK_OPTIONS

WORKER_DIR = Path(__file__).resolve().parents[2] / "worker"


def _registered_worker_tasks() -> dict:
    app.loader.import_default_modules()  # what a worker does with CELERY_IMPORTS at start
    return {name: task for name, task in app.tasks.items() if name.startswith("worker.")}


def _named_task_names() -> set[str]:
    return {value for name, value in vars(task_names).items()
            if name.isupper() and isinstance(value, str) and value.startswith("worker.")}


def test_messages_are_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_broker_is_redis_in_tests():
    assert app.conf.broker_url.startswith("redis://127.0.0.1")


def test_inference_line_and_training_queues_are_declared_and_routed():
    assert {queue.name for queue in app.conf.task_queues} == {"inference", "line", "training"}
    router = app.amqp.router
    assert router.route({}, "worker.tasks.inference.predict_images")["queue"].name == "inference"
    assert router.route({}, "worker.tasks.training.run_training")["queue"].name == "training"
    assert router.route({}, "worker.tasks.classify.classify_images")["queue"].name == "line"


def test_one_message_at_a_time_per_worker_process():
    # Long tasks must not sit prefetched behind a busy process.
    assert app.conf.worker_prefetch_multiplier == 1


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


def test_every_task_name_is_registered_and_every_registered_task_is_named():
    assert set(_registered_worker_tasks()) == _named_task_names()


def test_every_registered_task_has_a_row_of_options_and_every_row_a_task():
    assert set(TASK_OPTIONS) == set(_registered_worker_tasks())


@pytest.mark.parametrize("name", sorted(TASK_OPTIONS))
def test_every_option_in_the_table_is_one_celery_knows(name):
    # Celery makes any keyword a task attribute: a misspelled option would be silently ignored.
    unknown = {option for option in TASK_OPTIONS[name]
               if not hasattr(Task, option) or callable(getattr(Task, option))}
    assert unknown == set()


@pytest.mark.parametrize("name", sorted(TASK_OPTIONS))
def test_the_registered_task_carries_its_options(name):
    task = _registered_worker_tasks()[name]
    assert {option: getattr(task, option) for option in TASK_OPTIONS[name]} == TASK_OPTIONS[name]


@pytest.mark.parametrize("name", sorted(TASK_OPTIONS))
def test_every_task_has_a_hard_time_limit_above_its_soft_one(name):
    task = _registered_worker_tasks()[name]
    assert task.time_limit
    assert task.soft_time_limit is None or task.soft_time_limit < task.time_limit


def test_task_decorators_take_their_options_from_the_table_only():
    # A literal beside the row (``@shared_task(soft_time_limit=5, **task_options(...))``) would be
    # a second home; only ``bind`` (how the function is called) is declared at the task.
    found = []
    for path in sorted((WORKER_DIR / "tasks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "shared_task":
                spread = [k.value for k in node.keywords if k.arg is None]
                found.append((path.name, [k.arg for k in node.keywords if k.arg not in (None, "bind")],
                              len(spread) == 1 and getattr(spread[0].func, "id", None) == "task_options"))
    assert len(found) == len(TASK_OPTIONS)
    assert [(module, literals, from_table) for module, literals, from_table in found
            if literals or not from_table] == []
