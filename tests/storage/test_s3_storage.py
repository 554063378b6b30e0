"""Uploads, model artefacts and training copies through django-storages' S3 backend, against a
real S3-compatible server on loopback (see conftest)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from inspections.catalog.services.images import image_upload
from inspections.catalog.services.stored_files import local_copies
from inspections.errors import ApplicationError
from inspections.models import InspectionImage
from inspections.registry.services.artefact_storage import artefact_local_dir
from inspections.registry.services.model_versions import model_version_register
from tests.factories import UserFactory, image_bytes

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.s3, pytest.mark.django_db]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_default_storage_really_is_s3(s3_bucket):
    from django.core.files.storage import storages
    from storages.backends.s3 import S3Storage

    assert isinstance(storages["default"], S3Storage)
    with pytest.raises(NotImplementedError):
        default_storage.path("images/x.png")


def test_an_upload_lands_in_the_bucket_and_its_row_points_at_it(s3_bucket):
    content = image_bytes(seed=1, fmt="PNG")
    result = image_upload(content=content, filename="strip.png", uploaded_by=None)
    image = InspectionImage.objects.get(pk=result.image.pk)
    assert result.created
    assert s3_bucket.keys() == {image.file.name}
    assert image.file.name == f"images/{image.sha256[:2]}/{image.sha256}.png"
    assert s3_bucket.read(image.file.name) == content
    with image.file.open("rb") as handle:
        assert handle.read() == content


def test_the_same_bytes_uploaded_twice_are_one_object(s3_bucket):
    content = image_bytes(seed=2, fmt="BMP")
    first = image_upload(content=content, filename="a.bmp", uploaded_by=None)
    second = image_upload(content=content, filename="b.bmp", uploaded_by=None)
    assert (first.created, second.created) == (True, False)
    assert len(s3_bucket.keys()) == 1


def test_an_upload_through_the_api_is_served_back_from_the_bucket(s3_bucket):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=UserFactory(roles=['qa']), name='test').secret}")
    content = image_bytes(seed=3, fmt="JPEG", mode="RGB")
    response = client.post("/api/v1/images/", {"file": SimpleUploadedFile("coil.jpg", content)}, format="multipart")
    assert response.status_code == 201, response.content
    image = InspectionImage.objects.get(pk=response.json()["id"])
    assert s3_bucket.keys() == {image.file.name}
    served = client.get(f"/api/v1/images/{image.pk}/file/")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == content


def test_a_refused_upload_leaves_nothing_in_the_bucket(s3_bucket):
    with pytest.raises(ApplicationError):
        image_upload(content=b"<html>not an image</html>", filename="x.png", uploaded_by=None)
    assert s3_bucket.keys() == set()
    assert InspectionImage.objects.count() == 0


def test_a_row_that_cannot_be_written_takes_its_object_with_it(s3_bucket, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(InspectionImage, "save", fail)
    with pytest.raises(RuntimeError):
        image_upload(content=image_bytes(seed=4), filename="x.png", uploaded_by=None)
    assert s3_bucket.keys() == set()


def test_training_copies_of_stored_images_are_local_files_with_the_same_bytes(s3_bucket, tmp_path):
    contents = [image_bytes(seed=10 + i) for i in range(3)]
    names = [image_upload(content=c, filename=f"{i}.png", uploaded_by=None).image.file.name
             for i, c in enumerate(contents)]
    copies = local_copies(names=names, folder=tmp_path / "copies")
    assert set(copies) == set(names)
    for name, content in zip(names, contents):
        assert copies[name].is_relative_to(tmp_path / "copies")
        assert copies[name].read_bytes() == content


def test_model_artefacts_are_stored_in_the_bucket(s3_bucket, tiny_model_dirs):
    model_dir = tiny_model_dirs[0]
    version = model_version_register(model_dir=model_dir)
    expected = {f"{version.artifact_path}/{p.relative_to(model_dir).as_posix()}"
                for p in model_dir.rglob("*") if p.is_file()}
    assert s3_bucket.keys(prefix=version.artifact_path) == expected
    assert s3_bucket.keys() == expected


def test_a_worker_process_downloads_and_loads_artefacts_another_process_stored(s3_bucket, tiny_model_dirs, tmp_path):
    model_dir = tiny_model_dirs[0]
    version = model_version_register(model_dir=model_dir)
    probe = tmp_path / "probe.png"
    probe.write_bytes(image_bytes(seed=99))
    cache = tmp_path / "worker-cache"
    code = (
        "import json, sys, django\n"
        "django.setup()\n"
        "from django.core.files.storage import default_storage\n"
        "from inspections.registry.services.artefact_storage import artefact_local_dir\n"
        "from mlcore.inference import Classifier\n"
        "local = artefact_local_dir(prefix=sys.argv[1])\n"
        "result = Classifier.load(local).predict_files([sys.argv[2]])[0]\n"
        "print(json.dumps({'storage': type(default_storage._wrapped).__name__, 'dir': str(local),\n"
        "                  'label': result.label, 'classes': sorted(result.probabilities)}))\n"
    )
    env = {**os.environ, **s3_bucket.environment(), "DJANGO_SETTINGS_MODULE": "steelqc.settings.test",
           "STEELQC_CACHE_DIR": str(cache), "MEDIA_ROOT": str(tmp_path / "no-media-here")}
    result = subprocess.run([sys.executable, "-c", code, version.artifact_path, str(probe)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["storage"] == "S3Storage"
    local = Path(answer["dir"])
    assert local.is_relative_to(cache)
    assert answer["classes"] == sorted(version.classes)
    assert answer["label"] in version.classes
    originals = {p.relative_to(model_dir).as_posix(): _digest(p) for p in model_dir.rglob("*") if p.is_file()}
    downloaded = {p.relative_to(local).as_posix(): _digest(p) for p in local.rglob("*")
                  if p.is_file() and p.name != ".complete"}
    assert downloaded == originals
    assert not (tmp_path / "no-media-here").exists()


def test_a_downloaded_artefact_is_reused_not_fetched_again(s3_bucket, tiny_model_dirs, settings, tmp_path):
    settings.STEELQC_CACHE_DIR = tmp_path / "cache"
    version = model_version_register(model_dir=tiny_model_dirs[1])
    first = artefact_local_dir(prefix=version.artifact_path)
    # With the objects gone, only a cached copy can answer.
    client = s3_bucket.server.client()
    for key in s3_bucket.keys():
        client.delete_object(Bucket=s3_bucket.name, Key=key)
    assert artefact_local_dir(prefix=version.artifact_path) == first
    assert (first / "classes.json").is_file()
