import pytest
from django.conf import settings

from steelqc.celery import app
from worker.tasks.health import ping

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("queue", ["inference", "training"])
def test_real_worker_consumes_from_redis_and_reaches_the_database(celery_worker, queue):
    result = ping.apply_async(queue=queue)
    answer = result.get(timeout=60)
    assert answer["database"] == "ok (postgresql)"
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_worker_listens_on_both_queues(celery_worker):
    active = app.control.inspect(timeout=5).active_queues()
    assert active, "no worker answered"
    queues = {q["name"] for worker_queues in active.values() for q in worker_queues}
    assert queues == {"inference", "training"}
