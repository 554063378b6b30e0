"""The file part of backup and restore through django-storages' S3 backend (a real S3-compatible
server on loopback, see conftest): out of one bucket, into an empty bucket and into a local folder."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from inspections.catalog.services.images import image_upload
from inspections.errors import ApplicationError
from inspections.ops.services.backup import STORAGE_FOLDER, backup_create, backup_files_restore, backup_verify
from inspections.registry.services.model_versions import model_version_register
from tests.factories import image_bytes
from tests.storage.conftest import S3Bucket

# Rows are committed: pg_dump reads them from its own connection.
pytestmark = [pytest.mark.s3, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _artefact_dir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "classes.json").write_text(json.dumps(["crazing", "inclusion"]))
    (folder / "config.json").write_text(json.dumps(
        {"backbone": {"name": "efficientnet_lite0", "weight_source": {"kind": "none", "file": None, "sha256": None}}}))
    (folder / "model.keras").write_bytes(image_bytes(seed=901, size=(64, 64)))
    return folder


def _use_bucket(settings, name: str) -> None:
    default = settings.STORAGES["default"]
    settings.STORAGES = {**settings.STORAGES, "default": {**default, "OPTIONS": {**default["OPTIONS"], "bucket_name": name}}}


def test_files_backed_up_from_s3_restore_into_an_empty_bucket_and_a_local_folder(s3_bucket, s3_server, settings,
                                                                                   tmp_path, no_queue):
    for i in range(3):
        image_upload(content=image_bytes(seed=600 + i), filename=f"{i}.png", uploaded_by=None)
    model_version_register(model_dir=_artefact_dir(tmp_path / "artefact"))
    stored = s3_bucket.keys()

    report = backup_create(out_dir=tmp_path / "backup")
    assert {entry["name"] for entry in report.manifest["files"]} == stored
    for name in stored:
        assert (tmp_path / "backup" / STORAGE_FOLDER / name).read_bytes() == s3_bucket.read(name)
    manifest = backup_verify(backup_dir=tmp_path / "backup")

    empty = S3Bucket(server=s3_server, name=f"steelqc-restore-{uuid.uuid4().hex[:12]}")
    s3_server.client().create_bucket(Bucket=empty.name)
    _use_bucket(settings, empty.name)
    restored = backup_files_restore(backup_dir=tmp_path / "backup", manifest=manifest)
    assert (restored.files_written, restored.files_present) == (len(stored), 0)
    assert empty.keys() == stored
    assert all(empty.read(name) == s3_bucket.read(name) for name in stored)

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.MEDIA_ROOT = tmp_path / "local-media"
    backup_files_restore(backup_dir=tmp_path / "backup", manifest=manifest)
    assert all((tmp_path / "local-media" / name).read_bytes() == s3_bucket.read(name) for name in stored)


def test_a_restore_keeps_identical_objects_and_refuses_one_with_other_bytes(s3_bucket, settings, tmp_path, no_queue):
    names = [image_upload(content=image_bytes(seed=700 + i), filename=f"{i}.png", uploaded_by=None).image.file.name
             for i in range(2)]
    backup_create(out_dir=tmp_path / "backup")
    manifest = backup_verify(backup_dir=tmp_path / "backup")

    again = backup_files_restore(backup_dir=tmp_path / "backup", manifest=manifest)
    assert (again.files_written, again.files_present) == (0, 2)

    s3_bucket.server.client().put_object(Bucket=s3_bucket.name, Key=names[1], Body=b"other bytes")
    with pytest.raises(ApplicationError, match="other bytes") as refused:
        backup_files_restore(backup_dir=tmp_path / "backup", manifest=manifest)
    assert refused.value.details["conflicts"] == [names[1]]
    assert s3_bucket.read(names[1]) == b"other bytes"

    replaced = backup_files_restore(backup_dir=tmp_path / "backup", manifest=manifest, force=True)
    assert replaced.files_written == 1
    assert s3_bucket.read(names[1]) == (tmp_path / "backup" / STORAGE_FOLDER / names[1]).read_bytes()
