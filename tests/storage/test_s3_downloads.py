"""Artefact downloads and the dataset export read their files from an S3 bucket (see conftest)."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from inspections.catalog.services.images import image_upload
from inspections.registry.services.model_versions import model_version_register
from inspections.review.services.reviews import review_submit
from mlcore.artefact import MODEL_FILE
from tests.factories import UserFactory, image_bytes
from tests.inspections.api.conftest import client_for

pytestmark = [pytest.mark.s3, pytest.mark.django_db]


def test_an_artefact_streams_from_the_bucket_with_its_digest(s3_bucket, tiny_model_dirs):
    version = model_version_register(model_dir=tiny_model_dirs[0])
    local = (tiny_model_dirs[0] / MODEL_FILE).read_bytes()
    assert f"{version.artifact_path}/{MODEL_FILE}" in s3_bucket.keys()
    response = client_for("integrator").get(f"/api/v1/model-versions/{version.pk}/artefacts/{MODEL_FILE}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == local
    listed = client_for("integrator").get(f"/api/v1/model-versions/{version.pk}/artefacts/").json()
    assert {e["name"]: e["sha256"] for e in listed}[MODEL_FILE] == hashlib.sha256(local).hexdigest()


def test_the_dataset_export_reads_images_from_the_bucket(s3_bucket, no_queue):
    content = image_bytes(seed=5, fmt="PNG")
    image = image_upload(content=content, filename="strip.png", uploaded_by=None).image
    review_submit(image=image, label_name="crazing", reviewer=UserFactory(roles=["qa"]))
    response = client_for("ml_admin").get("/api/v1/dataset-export/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.read(f"crazing/{image.sha256}.png") == content
