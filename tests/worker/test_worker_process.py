import pytest
from django.conf import settings

from steelqc.celery import app
from worker.tasks.health import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("queue", ["inference", "line", "training"])
def test_real_worker_consumes_from_redis_and_reaches_the_database(celery_worker, queue):
    result = ping.apply_async(queue=queue)
    answer = result.get(timeout=60)
    assert answer["database"] == "ok (postgresql)"
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_inference_line_and_training_are_consumed_by_separate_workers(celery_worker):
    active = app.control.inspect(timeout=5).active_queues()
    assert active, "no worker answered"
    queues_by_worker = {name.split("@")[0]: {queue["name"] for queue in queues} for name, queues in active.items()}
    assert queues_by_worker == {celery_worker.inference.node: {"inference"}, celery_worker.line.node: {"line"},
                                celery_worker.training.node: {"training"}}
