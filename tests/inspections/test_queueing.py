import pytest

from inspections import queueing
from inspections.models import DefectClass, LabelSource
from inspections.services.model_versions import model_version_promote
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory


class FakeApp:
    def __init__(self, fail_after: int | None = None):
        self.sent, self.fail_after = [], fail_after

    def send_task(self, name, *, kwargs, queue, retry_policy):
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("broker down")
        self.sent.append((name, queue, kwargs))


def test_a_long_list_goes_out_as_batch_sized_messages(monkeypatch, settings):
    settings.STEELQC_INFERENCE_BATCH_SIZE = 4
    app = FakeApp()
    monkeypatch.setattr(queueing, "current_app", app)
    assert queueing.inference_enqueue(image_ids=list(range(10))) == 10
    assert [kwargs["image_ids"] for _, _, kwargs in app.sent] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert {(name, queue) for name, queue, _ in app.sent} == {(queueing.PREDICT_IMAGES_TASK, "inference")}


def test_a_broker_failure_reports_how_many_were_queued(monkeypatch, settings):
    settings.STEELQC_INFERENCE_BATCH_SIZE = 4
    monkeypatch.setattr(queueing, "current_app", FakeApp(fail_after=1))
    assert queueing.inference_enqueue(image_ids=list(range(10))) == 4


@pytest.mark.django_db
def test_promotion_can_repredict_exactly_the_images_waiting_for_a_person(monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("inspections.services.model_versions.inference_enqueue", lambda *, image_ids: sent.append(image_ids))
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
