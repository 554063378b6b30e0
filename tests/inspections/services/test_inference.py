"""The prediction service in-process: idempotent, micro-batched, safe without a model."""

import pytest

from inspections.catalog.services.images import image_upload
from inspections.models import ImageStatus, InspectionImage, Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.review.services.inference import predictions_create
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db




def _upload(seed):
    return image_upload(content=image_bytes(seed=seed), filename="x.png", uploaded_by=None).image


def test_without_an_active_version_nothing_is_predicted(no_queue):
    image = _upload(1)
    assert predictions_create(image_ids=[image.id]) == 0
    image.refresh_from_db()
    assert image.status == ImageStatus.PENDING


def test_running_the_task_twice_writes_one_prediction(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    image = _upload(2)
    assert predictions_create(image_ids=[image.id]) == 1
    assert predictions_create(image_ids=[image.id]) == 0
    assert Prediction.objects.filter(image=image).count() == 1


def test_one_task_takes_other_waiting_images_into_its_batch(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    images = [_upload(seed) for seed in range(10, 16)]
    assert predictions_create(image_ids=[images[-1].id], batch_size=4) == 4
    assert Prediction.objects.filter(image=images[-1]).exists()
    assert predictions_create(image_ids=[images[0].id], batch_size=4) == 2
    assert not InspectionImage.objects.filter(status=ImageStatus.PENDING).exists()


def test_a_task_for_many_images_predicts_all_of_them_a_batch_at_a_time(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    images = [_upload(seed) for seed in range(30, 41)]
    assert predictions_create(image_ids=[i.id for i in images], batch_size=4) == 11
    assert Prediction.objects.filter(image__in=images).count() == 11


def test_an_image_that_no_longer_decodes_is_marked_failed_and_not_retried(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    broken, fine = _upload(50), _upload(51)
    broken.file.storage.delete(broken.file.name)
    assert predictions_create(image_ids=[broken.id, fine.id], batch_size=4) == 1
    broken.refresh_from_db()
    assert broken.status == ImageStatus.FAILED
    assert predictions_create(image_ids=[broken.id], batch_size=4) == 0


def test_the_worker_and_the_heatmaps_share_one_loaded_classifier_and_one_decode(no_queue, tiny_model_dirs,
                                                                              monkeypatch):
    import numpy as np

    from inspections.registry.services import classifiers
    from inspections.review.pages.heatmaps import heatmap_png
    from inspections.review.services import inference

    version = model_version_register(model_dir=tiny_model_dirs[0])
    model_version_promote(version=version)
    image = _upload(50)
    loaded = inference.serving_models().classifier
    seen = []

    def fake_gradcam(classifier, pixels, class_index=None):
        seen.append((classifier, pixels))
        return np.zeros(pixels.shape[:2], dtype=np.float32)

    monkeypatch.setattr("mlcore.explain.gradcam", fake_gradcam)
    assert heatmap_png(image=image, version=version).startswith(b"\x89PNG")
    assert seen[0][0] is loaded.classifier
    np.testing.assert_array_equal(seen[0][1], classifiers.image_pixels(image=image))


def test_each_prediction_stores_the_models_review_reasons(no_queue, tiny_model_dirs):
    import io

    from PIL import Image

    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    blank = io.BytesIO()
    Image.new("L", (32, 32), 255).save(blank, format="PNG")  # a saturated frame
    image = image_upload(content=blank.getvalue(), filename="white.png", uploaded_by=None).image
    predictions_create(image_ids=[image.id])
    prediction = Prediction.objects.get(image=image)
    assert "blank_frame" in prediction.review_reasons
    assert prediction.needs_review is True


def _iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_a_version_with_a_detection_head_stores_where_the_defects_are(no_queue, boxed_model):
    import io

    import numpy as np
    from PIL import Image

    from tests.conftest import boxed_frame

    model_version_promote(version=model_version_register(model_dir=boxed_model[0]))
    frame, truth = boxed_frame(np.random.default_rng(99))
    content = io.BytesIO()
    Image.fromarray(frame).save(content, format="PNG")
    image = image_upload(content=content.getvalue(), filename="boxed.png", uploaded_by=None).image
    assert predictions_create(image_ids=[image.id]) == 1
    boxes = Prediction.objects.get(image=image).boxes
    assert boxes and all(set(box) == {"label", "box", "score"} for box in boxes)
    assert [box["score"] for box in boxes] == sorted((box["score"] for box in boxes), reverse=True)
    best = boxes[0]
    assert any(label == best["label"] and _iou(best["box"], box) >= 0.3 for label, *box in truth), (boxes, truth)


def test_a_version_without_a_head_stores_no_boxes(no_queue, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    image = _upload(77)
    predictions_create(image_ids=[image.id])
    assert Prediction.objects.get(image=image).boxes == []
