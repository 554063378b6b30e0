import pytest

from inspections import queueing
from inspections.models import DefectClass, LabelSource
from inspections.registry.services.model_versions import model_version_promote
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory


class FakeApp:
    def __init__(self, fail_after: int | None = None):
        self.sent, self.fail_after = [], fail_after

    def send_task(self, name, *, kwargs, queue, retry_policy, **options):
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("broker down")
        self.sent.append((name, queue, kwargs))


def test_a_long_list_goes_out_as_batch_sized_messages(monkeypatch, settings):
    settings.STEELQC_INFERENCE_BATCH_SIZE = 4
    app = FakeApp()
    monkeypatch.setattr(queueing, "current_app", app)
    assert queueing.inference_enqueue(image_ids=list(range(10))) == 10
    assert [kwargs["image_ids"] for _, _, kwargs in app.sent] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len({(name, queue) for name, queue, _ in app.sent}) == 1


def _registered_task(name: str):
    from steelqc.celery import app

    app.loader.import_default_modules()  # what a worker does with CELERY_IMPORTS at start
    assert name in app.tasks, f"no worker task is registered under {name!r}"
    return app, app.tasks[name]


def test_every_message_names_a_registered_task_on_the_queue_its_route_says(monkeypatch, settings):
    import inspect

    settings.STEELQC_PROMOTION_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    app = FakeApp()
    monkeypatch.setattr(queueing, "current_app", app)
    queueing.inference_enqueue(image_ids=[1, 2])
    queueing.training_run_enqueue(run_id=3)
    queueing.promotion_event_enqueue(version_id=4)
    assert len(app.sent) == 3
    for name, queue, kwargs in app.sent:
        celery_app, task = _registered_task(name)
        assert celery_app.amqp.router.route({}, name)["queue"].name == queue, name
        # The task accepts exactly the keyword arguments it is sent.
        inspect.signature(task.run).bind(**kwargs)


def test_training_is_sent_to_the_training_queue_and_inference_to_the_inference_queue(monkeypatch):
    app = FakeApp()
    monkeypatch.setattr(queueing, "current_app", app)
    queueing.inference_enqueue(image_ids=[1])
    queueing.training_run_enqueue(run_id=1)
    assert [queue for _, queue, _ in app.sent] == ["inference", "training"]


def test_a_training_run_that_cannot_be_queued_is_reported(monkeypatch):
    monkeypatch.setattr(queueing, "current_app", FakeApp(fail_after=0))
    assert queueing.training_run_enqueue(run_id=1) is False


def test_a_broker_failure_reports_how_many_were_queued(monkeypatch, settings):
    settings.STEELQC_INFERENCE_BATCH_SIZE = 4
    monkeypatch.setattr(queueing, "current_app", FakeApp(fail_after=1))
    assert queueing.inference_enqueue(image_ids=list(range(10))) == 4


@pytest.mark.django_db
def test_promotion_can_repredict_exactly_the_images_waiting_for_a_person(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("inspections.registry.services.model_versions.inference_enqueue", lambda *, image_ids: sent.append(image_ids))
    old = ModelVersionFactory()
    crazing = DefectClass.objects.get_or_create(name="crazing")[0]
    waiting = InspectionImageFactory(status="predicted")
    confident = InspectionImageFactory(status="predicted")
    decided = InspectionImageFactory(status="predicted", label=crazing, label_source=LabelSource.REVIEW)
    for image, needs_review in ((waiting, True), (confident, False), (decided, True)):
        PredictionFactory(image=image, model_version=old, needs_review=needs_review)
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=ModelVersionFactory(), repredict_review_queue=True)
    assert [waiting.id] in sent
    assert not any(confident.id in ids or decided.id in ids for ids in sent)


def test_publishing_never_builds_the_result_backend(monkeypatch):
    """Nothing reads a queued task's result; Celery's result object would build the backend in
    every new thread (an entry-point scan, ~8 CPU-ms on each gunicorn thread's first upload)."""
    import threading

    import redis
    from celery import current_app
    from django.conf import settings

    app = current_app._get_current_object()

    def no_backend():
        raise AssertionError("the result backend was built to publish a message")

    monkeypatch.setattr(app, "_get_backend", no_backend)
    queue = "steelqc_test_publish"
    errors = []

    def publish():
        try:
            queueing._send("steelqc.test.nothing", kwargs={"image_ids": [1]}, queue=queue)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=publish)  # a new thread: no backend built in it yet
    thread.start()
    thread.join()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        assert not errors, errors
        assert broker.llen(queue) == 1
    finally:
        broker.delete(queue)
