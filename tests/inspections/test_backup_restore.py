"""backup_installation / restore_installation against the real PostgreSQL: a small installation is
backed up, restored into an empty second database and media folder by a separate process, and read
back there through the ORM."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection

from inspections.catalog.services.images import image_upload
from inspections.models import DatasetSnapshot, DatasetSnapshotItem, DefectClass, InspectionImage, ModelVersion, Review
from inspections.ops.services.backup import MANIFEST_FILE, STORAGE_FOLDER
from inspections.ops.services.backup_folder import SIGNATURE_FILE, key_id
from inspections.registry.services.model_versions import model_version_register
from inspections.review.services.reviews import review_submit
from tests.factories import TrainingRunFactory, UserFactory, image_bytes

ROOT = Path(__file__).resolve().parent.parent.parent
# Backups here are signed with this key, given to the restoring processes as STEELQC_BACKUP_KEY.
BACKUP_KEY = "backup-key-of-the-test-installation"

# Transactional: pg_dump reads from its own connection, so the rows must be committed. Without
# serialized_rollback the suite runs it with every app available (tests/conftest.py), so the
# content types and permissions it dumps are created when it starts.
pytestmark = pytest.mark.django_db(transaction=True)

# Run in a separate process configured for the empty database and media folder: the restore
# command (then once more with --force over what it restored), then what the restored
# installation's ORM and storage give back.
RESTORE_AND_READ_BACK = """
import hashlib, json, sys, django
django.setup()
from django.apps import apps
from django.core.files.storage import default_storage
from django.core.management import call_command
from inspections.models import InspectionImage, ModelVersion
call_command("restore_installation", sys.argv[1])
call_command("restore_installation", sys.argv[1], force=True)  # over itself: the same rows, no file written
images = []
for image in InspectionImage.objects.select_related("label").order_by("sha256"):
    with image.file.open("rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    images.append([image.sha256, image.file.name, image.label.name if image.label else None, digest])
versions = [[v.number, v.artifact_path, default_storage.exists(v.artifact_path + "/config.json")]
            for v in ModelVersion.objects.order_by("number")]
counts = {m._meta.label: m._default_manager.count() for m in apps.get_models() if m._meta.managed and not m._meta.proxy}
print(json.dumps({"images": images, "versions": versions, "counts": counts}))
"""


@pytest.fixture(autouse=True)
def backup_key(settings):
    settings.STEELQC_BACKUP_KEY = BACKUP_KEY


def _artefact_dir(folder: Path) -> Path:
    """An artefact folder as training writes it (no trained weights needed to store one)."""
    folder.mkdir(parents=True)
    (folder / "classes.json").write_text(json.dumps(["crazing", "inclusion"]))
    (folder / "config.json").write_text(json.dumps({
        "backbone": {"name": "efficientnet_lite0", "weight_source": {"kind": "none", "file": None, "sha256": None}},
        "review": {"confidence_threshold": 0.6},
    }))
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    (folder / "model.keras").write_bytes(os.urandom(20_000))
    (folder / "saved_model.zip").write_bytes(os.urandom(3_000))  # as made on a first download: left out
    (folder / "plots").mkdir()
    (folder / "plots" / "confusion_matrix.png").write_bytes(image_bytes(seed=77))
    return folder


@pytest.fixture
def installation(tmp_path, no_queue):
    """Images uploaded through the service, reviews, a registered version with artefacts, a run."""
    reviewer = UserFactory(roles=["qa"])
    for name in ("crazing", "inclusion"):  # an earlier transactional test may have flushed the migrated classes
        DefectClass.objects.update_or_create(name=name, defaults={"active": True})
    images = [image_upload(content=image_bytes(seed=500 + i), filename=f"coil-{i}.png", uploaded_by=reviewer).image
              for i in range(4)]
    for image, label in zip(images[:3], ["crazing", "inclusion", "crazing"]):
        review_submit(image=image, label_name=label, reviewer=reviewer)
    version = model_version_register(model_dir=_artefact_dir(tmp_path / "artefact"))
    snapshot = DatasetSnapshot.objects.create(image_count=1, counts={}, checksum="0" * 64)
    labelled = InspectionImage.objects.get(pk=images[0].pk)
    DatasetSnapshotItem.objects.create(snapshot=snapshot, image=labelled, label=labelled.label, split="train")
    TrainingRunFactory(snapshot=snapshot, model_version=version)
    return {"images": images, "version": version}


@pytest.fixture
def backup_dir(installation, tmp_path) -> Path:
    out = tmp_path / "backup"
    call_command("backup_installation", str(out))
    return out


@pytest.fixture
def empty_database():
    """A second, empty PostgreSQL database beside the test database; dropped at the end."""
    settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_restored_{uuid.uuid4().hex[:6]}"[:63]
    params = dict(host=settings_dict["HOST"] or "127.0.0.1", port=settings_dict["PORT"] or 5432,
                  user=settings_dict["USER"], password=settings_dict["PASSWORD"] or None, dbname="postgres")
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _environment(database: str, media: Path) -> dict[str, str]:
    settings_dict = connection.settings_dict
    url = (f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:"
           f"{settings_dict['PORT'] or 5432}/{database}")
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.test", "DATABASE_URL": url,
            "MEDIA_ROOT": str(media), "PYTHONUNBUFFERED": "1", "STEELQC_BACKUP_KEY": BACKUP_KEY}


def _run(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=300)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _live_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()
            if model._meta.managed and not model._meta.proxy}


def test_the_manifest_lists_every_stored_file_with_its_sha256_and_the_row_counts(installation, backup_dir, media_root,
                                                                                 capsys):
    manifest = json.loads((backup_dir / MANIFEST_FILE).read_text())
    version = installation["version"]
    images = {image.file.name for image in installation["images"]}
    artefacts = {f"{version.artifact_path}/{name}" for name in
                 ("classes.json", "config.json", "metrics.json", "model.keras", "plots/confusion_matrix.png")}
    assert {entry["name"] for entry in manifest["files"]} == images | artefacts
    assert (media_root / version.artifact_path / "saved_model.zip").is_file()
    for entry in manifest["files"]:
        assert entry["sha256"] == _digest(media_root / entry["name"])
        assert entry["size"] == (media_root / entry["name"]).stat().st_size
        assert _digest(backup_dir / STORAGE_FOLDER / entry["name"]) == entry["sha256"]
    assert manifest["counts"] == _live_counts()
    assert manifest["counts"]["inspections.InspectionImage"] == 4
    assert manifest["counts"]["inspections.Review"] == 3
    assert manifest["counts"]["inspections.TrainingRun"] == 1
    assert manifest["database"]["engine"] == "postgresql"
    assert manifest["database"]["sha256"] == _digest(backup_dir / "database.dump")
    assert manifest["migrations"]["inspections"] == max(
        path.stem for path in (ROOT / "inspections" / "migrations").glob("0*.py"))
    assert manifest["missing"] == []
    assert json.loads((backup_dir / SIGNATURE_FILE).read_text())["key_id"] == key_id(BACKUP_KEY.encode())
    call_command("restore_installation", str(backup_dir), verify=True)
    assert "is complete: its signature and the database" in capsys.readouterr().out


def test_a_backup_restores_into_an_empty_database_and_storage(installation, backup_dir, empty_database, tmp_path):
    restored_media = tmp_path / "restored-media"
    environment = _environment(empty_database, restored_media)
    result = _run(["-c", RESTORE_AND_READ_BACK, str(backup_dir)], environment)
    assert result.returncode == 0, result.stderr[-3000:]
    first, again = [line for line in result.stdout.splitlines() if line.startswith("Restored")]
    assert "images 4" in first and "0 already in storage" in first
    assert "pg_restore ran as role steelqc_restore_" in first  # the test database's role is a superuser
    assert "0 files written" in again and "images 4" in again

    manifest = json.loads((backup_dir / MANIFEST_FILE).read_text())
    for entry in manifest["files"]:
        assert _digest(restored_media / entry["name"]) == entry["sha256"]
    restored = json.loads(result.stdout.strip().splitlines()[-1])
    originals = InspectionImage.objects.select_related("label").order_by("sha256")
    assert restored["images"] == [[image.sha256, image.file.name, image.label.name if image.label else None,
                                   image.sha256] for image in originals]
    version = installation["version"]
    assert restored["versions"] == [[version.number, version.artifact_path, True]]
    assert restored["counts"] == manifest["counts"] == _live_counts()
    assert Review.objects.count() == 3 and ModelVersion.objects.count() == 1


def test_verify_names_a_changed_file_and_restore_refuses_the_backup(installation, backup_dir, settings,
                                                                              tmp_path):
    name = installation["images"][1].file.name
    damaged = backup_dir / STORAGE_FOLDER / name
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))

    with pytest.raises(CommandError, match="damaged") as verified:
        call_command("restore_installation", str(backup_dir), verify=True)
    assert name in str(verified.value)
    assert "1 file(s) do not match" in str(verified.value)

    settings.MEDIA_ROOT = tmp_path / "untouched-media"
    with pytest.raises(CommandError, match="damaged") as restored:
        call_command("restore_installation", str(backup_dir), force=True)
    assert name in str(restored.value)
    assert not (tmp_path / "untouched-media").exists()
    assert InspectionImage.objects.count() == 4

    dump = backup_dir / "database.dump"
    content = bytearray(dump.read_bytes())
    content[100] ^= 0x01
    dump.write_bytes(bytes(content))
    with pytest.raises(CommandError, match="database.dump: sha256 differs"):
        call_command("restore_installation", str(backup_dir), verify=True)


def test_restoring_into_a_database_with_tables_is_refused_without_force(backup_dir, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "other-media"
    with pytest.raises(CommandError, match="is not empty"):
        call_command("restore_installation", str(backup_dir))
    assert not (tmp_path / "other-media").exists()


def test_a_file_missing_from_storage_fails_the_backup_unless_allowed(installation, media_root, tmp_path):
    name = installation["images"][2].file.name
    (media_root / name).unlink()
    with pytest.raises(CommandError, match="missing from storage") as refused:
        call_command("backup_installation", str(tmp_path / "refused"))
    assert name in str(refused.value)
    assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.partial").exists()

    call_command("backup_installation", str(tmp_path / "allowed"), allow_missing=True)
    manifest = json.loads((tmp_path / "allowed" / MANIFEST_FILE).read_text())
    assert manifest["missing"] == [name]
    assert name not in {entry["name"] for entry in manifest["files"]}


@pytest.mark.django_db(transaction=False)
def test_a_backup_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep")
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("backup_installation", str(tmp_path / "taken"))
    assert (tmp_path / "taken" / "notes.txt").read_text() == "keep"
