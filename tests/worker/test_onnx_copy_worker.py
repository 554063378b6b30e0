"""model.onnx through the real stack: the API's first download queues the build, the real training
worker converts and checks it on the version's held-out images, and the next download gets it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from inspections.registry.models import DatasetSnapshot, DatasetSnapshotItem
from inspections.registry.services.model_versions import model_version_register
from mlcore.artefact import ONNX_CHECK_FILE, ONNX_FILE
from tests.conftest import ROOT, tiny_dataset, wait_for
from tests.factories import DefectClassFactory, InspectionImageFactory, TrainingRunFactory
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

EDGE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import onnxruntime
    from PIL import Image

    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    pixels = np.asarray(Image.open(sys.argv[2]).convert("L"), dtype=np.float32)[None, :, :, None]
    probabilities, = session.run(["probabilities"], {"image": pixels})
    print(json.dumps({"probabilities": probabilities[0].tolist(),
                      "tensorflow_loaded": "tensorflow" in sys.modules or "keras" in sys.modules}))
""")


def test_the_training_worker_builds_the_onnx_copy_the_api_then_serves(celery_worker, tiny_model_dirs, tmp_path):
    from mlcore.inference import Classifier
    from mlcore.io import load_image

    version = model_version_register(model_dir=tiny_model_dirs[0])
    label = DefectClassFactory(name="crazing")
    snapshot = DatasetSnapshot.objects.create(image_count=4, counts={}, checksum="x")
    DatasetSnapshotItem.objects.bulk_create([
        DatasetSnapshotItem(snapshot=snapshot, image=InspectionImageFactory(seed=seed), label=label, split=split)
        for seed, split in ((11, "test"), (12, "test"), (13, "val"), (14, "train"))])
    TrainingRunFactory(snapshot=snapshot, model_version=version)
    client = client_for("integrator")
    url = f"/api/v1/model-versions/{version.pk}/artefacts/{ONNX_FILE}/"

    assert_error(client.get(url), 503, "artefact_building")
    response = wait_for(lambda: (r := client.get(url)).status_code == 200 and r, timeout=240, interval=2)
    body = b"".join(response.streaming_content)
    assert response["X-Checksum-SHA256"] == hashlib.sha256(body).hexdigest()
    record = json.loads(b"".join(client.get(
        f"/api/v1/model-versions/{version.pk}/artefacts/{ONNX_CHECK_FILE}/").streaming_content))
    assert (record["included"], record["check_images"], record["top1_agreement"]) == (True, 3, 1.0)
    assert record["check_source"] == "held-out images of the version's training run"
    assert record["max_probability_difference"] <= 1e-3
    assert record["size"] == len(body)

    # On a line PC: ONNX Runtime alone (no TensorFlow in the process) gives Keras' probabilities.
    (tmp_path / ONNX_FILE).write_bytes(body)
    frame, _, _ = tiny_dataset(tmp_path / "frames", seed=78, per_class=1)[0]
    run = subprocess.run([sys.executable, "-c", EDGE_SCRIPT, str(tmp_path / ONNX_FILE), str(frame)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    edge = json.loads(run.stdout.strip().splitlines()[-1])
    assert edge["tensorflow_loaded"] is False
    keras = Classifier.load(tiny_model_dirs[0], runtime="keras").predict_arrays([load_image(frame)])[0][0]
    np.testing.assert_allclose(edge["probabilities"], keras, atol=1e-4)
