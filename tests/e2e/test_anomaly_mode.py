"""Anomaly mode on the real stack: an ML admin trains an anomaly model through the API from the images
labelled no_defect (the real training worker, its gate, its promotion); with no classifier in service an
upload of a defect-like surface gets review reason anomaly and a score, and in the browser the queue
filtered to that reason and ordered by score leads to it, the review view says why, M overlays the map
(opaque where the defect is),
and a class key turns the person's verdict into the image's label."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import ImageStatus, InspectionImage, ModelVersion, Review, TrainingRun, TrainingRunStatus
from tests.conftest import TINY_ANOMALY_PARAMS, wait_for
from tests.data import good_and_defect_folders, good_with_a_blotch
from tests.inspections.api.conftest import client_for

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _png(array) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    buffer.seek(0)
    buffer.name = "strip-77.png"
    return buffer


def test_an_anomaly_model_trained_from_good_images_flags_a_defect_shown_with_its_map(page, users, celery_worker,
                                                                                    tmp_path):
    users("qa", "qa-ines")
    good_and_defect_folders(tmp_path / "data", good=40, defects=6)
    dataset_import_folder(root=tmp_path / "data")

    admin = client_for("ml_admin")
    started = admin.post("/api/v1/training-runs/", {"kind": "anomaly", "parameters": TINY_ANOMALY_PARAMS}, format="json")
    assert started.status_code == 202, started.content
    run_id = started.json()["id"]
    run = wait_for(lambda: TrainingRun.objects.filter(pk=run_id, status__in=["succeeded", "failed"]).first(),
                   timeout=240, interval=0.5)
    assert run.status == TrainingRunStatus.SUCCEEDED, run.error
    assert [line.split(" ", 1)[1] for line in run.log.splitlines() if " phase " in line] == [
        "phase scan", "phase features", "phase coreset", "phase calibrate", "phase save", "phase gate"]
    body = admin.get(f"/api/v1/training-runs/{run_id}/").json()
    gate = body["gate_decision"]
    assert body["kind"] == "anomaly" and gate["kind"] == "anomaly" and gate["promoted"], gate
    assert gate["candidate"]["defect_images"] == 6 and gate["candidate"]["auroc"] > 0.9
    version = ModelVersion.objects.get(pk=body["model_version"])
    assert (version.kind, version.status) == ("anomaly", "active")
    assert not ModelVersion.objects.filter(kind="classifier").exists()  # no classifier: anomaly mode alone

    upload = client_for("integrator").post("/api/v1/images/?wait=30", {
        "file": _png(good_with_a_blotch(np.random.default_rng(77), at=(4, 18)))}, format="multipart")
    assert upload.status_code == 201, upload.content
    image = upload.json()
    prediction = image["prediction"]
    assert prediction is not None, image
    assert (prediction["label"], prediction["review_reasons"]) == (None, ["anomaly"])
    assert prediction["anomaly_score"] > 1 and prediction["anomaly_model_version"] == version.pk

    log_in(page, "qa-ines")
    page.goto("/review/?review_reason=anomaly&order=anomaly")
    rows = page.locator("#queue-table tbody tr[data-image-id]")
    scores = [float(text) for text in page.locator('#queue-table [data-field="anomaly-score"]').all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and min(scores) > 1, scores
    assert image["id"] in [int(row.get_attribute("data-image-id")) for row in rows.all()]
    page.locator(f'#queue-table tr[data-image-id="{image["id"]}"] a').click()
    page.wait_for_url(re.compile(rf"/review/{image['id']}/\?"))
    assert "Unlike the good steel the anomaly model learnt" in page.inner_text('#review-reasons [data-reason="anomaly"]')
    assert page.locator("#no-class").is_visible() and page.locator("#anomaly-score strong").inner_text()
    page.keyboard.press("m")
    overlay = page.locator("#anomaly-overlay")
    overlay.wait_for(state="visible")
    # The web process's first map loads TensorFlow and the model: allow for a busy machine.
    page.wait_for_function("() => { const o = document.getElementById('anomaly-overlay'); "
                           "return o.complete && o.naturalWidth > 0; }", timeout=90_000)
    assert page.eval_on_selector("#anomaly-overlay", "o => [o.naturalWidth, o.naturalHeight]") == [32, 32]
    # The overlay is opaque where the blotch is (rows 4-9, columns 18-23) and faint far from it.
    blotch, corner = page.eval_on_selector("#anomaly-overlay", """o => {
        const canvas = document.createElement("canvas"); canvas.width = o.naturalWidth; canvas.height = o.naturalHeight;
        const context = canvas.getContext("2d"); context.drawImage(o, 0, 0);
        return [context.getImageData(20, 6, 1, 1).data[3], context.getImageData(3, 28, 1, 1).data[3]]; }""")
    assert blotch > 100 and blotch > 3 * corner, (blotch, corner)
    assert page.get_attribute("#anomaly-toggle", "aria-pressed") == "true"
    screenshot(page, "review-anomaly-map.png")

    key = page.locator('.label-button[data-label="inclusion"]').get_attribute("data-key")
    page.keyboard.press(key)
    wait_for(lambda: InspectionImage.objects.filter(pk=image["id"], label__name="inclusion").exists(), timeout=20)
    assert Review.objects.get(image_id=image["id"]).prediction.review_reasons == ["anomaly"]
    page.wait_for_url(lambda url: f"/review/{image['id']}/" not in url)
    # Let the worker finish the imported images before the end-of-test flush truncates its tables.
    wait_for(lambda: not InspectionImage.objects.filter(status=ImageStatus.PENDING).exists(), timeout=120)
