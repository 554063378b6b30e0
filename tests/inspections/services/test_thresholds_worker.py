"""A real worker process judges the next upload by a changed threshold, without a restart."""

import io

import numpy as np
import pytest
from PIL import Image

from inspections.catalog.services.images import image_upload
from inspections.models import Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from inspections.registry.services.thresholds import version_thresholds_set
from mlcore.artefact import REASON_LOW_CONFIDENCE
from tests.conftest import wait_for
from tests.data import TINY_MODEL_CLASSES, tiny_model_surface

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _upload_stripes(seed: int) -> Prediction:
    """A texture like the tiny model's crazing training images (it answers it confidently)."""
    buffer = io.BytesIO()
    Image.fromarray(tiny_model_surface("crazing", np.random.default_rng(seed))).save(buffer, format="PNG")
    image = image_upload(content=buffer.getvalue(), filename=f"{seed}.png", uploaded_by=None).image
    return wait_for(lambda: Prediction.objects.filter(image=image).first())


def test_a_changed_threshold_judges_the_next_upload_without_restarting_the_worker(celery_worker, tiny_model_dirs):
    version = model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    recorded = version.metrics["thresholds"]  # written by training: curves on the validation split
    assert recorded["split"] == "val" and recorded["defaults"] == {name: 0.6 for name in TINY_MODEL_CLASSES}
    assert set(recorded["curves"]) == set(TINY_MODEL_CLASSES)
    assert len(recorded["curves"]["crazing"]["precision"]) == len(recorded["curves"]["crazing"]["thresholds"]) == 21
    before = _upload_stripes(9001)  # the worker has loaded and keeps the model
    assert before.label.name == "crazing" and before.confidence > 0.6 and before.margin > 0.2
    assert REASON_LOW_CONFIDENCE not in before.review_reasons
    pid = celery_worker.inference.process.pid

    version_thresholds_set(version=version, thresholds={name: 1.0 for name in TINY_MODEL_CLASSES}, note="all to people")
    strict = _upload_stripes(9002)
    assert strict.confidence < 1.0
    assert REASON_LOW_CONFIDENCE in strict.review_reasons and strict.needs_review

    version_thresholds_set(version=version, thresholds={"crazing": 0.6}, note="back")
    relaxed = _upload_stripes(9003)
    assert relaxed.label.name == "crazing" and relaxed.margin > 0.2
    assert REASON_LOW_CONFIDENCE not in relaxed.review_reasons
    assert celery_worker.inference.process.pid == pid and celery_worker.inference.running
