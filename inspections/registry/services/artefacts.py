"""A model version's artefacts as downloads for the edge: which files, their size and sha256, and
the SavedModel copy, exported on first request and kept beside the artefact in storage.

The file names are mlcore's (``mlcore.artefact``); the SavedModel zip is the one name added here,
since it exists only as a download. Artefacts never change once stored, so a digest computed once
is cached for good.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection

from inspections.errors import NotFound
from inspections.registry.models import ModelVersion
from inspections.registry.services.artefact_storage import artefact_local_dir
from mlcore.artefact import (
    CLASSES_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    OOD_FILE,
    SERVING_FILE,
    SERVING_INT8_FILE,
    SUSPECTS_FILE,
)

SAVED_MODEL_ZIP = "saved_model.zip"  # mlcore.export's SavedModel folder and its side files, zipped
DOWNLOADABLE = (MODEL_FILE, SERVING_FILE, SERVING_INT8_FILE, SAVED_MODEL_ZIP, CLASSES_FILE, CONFIG_FILE, METRICS_FILE,
                OOD_FILE, SUSPECTS_FILE)
ON_DEMAND = {SAVED_MODEL_ZIP: MODEL_FILE}  # produced on first download from this file
CONTENT_TYPES = {".json": "application/json", ".zip": "application/zip"}
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelArtefact:
    name: str
    size: int | None     # None: produced on its first download
    sha256: str | None

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(Path(self.name).suffix, "application/octet-stream")


def _storage_name(version: ModelVersion, name: str) -> str:
    return f"{version.artifact_path.rstrip('/')}/{name}"


def _stored_digest(storage_name: str) -> str:
    key = f"steelqc:artefact-sha256:{storage_name}"
    digest = cache.get(key)
    if digest is None:
        hasher = hashlib.sha256()
        with default_storage.open(storage_name, "rb") as handle:
            for chunk in iter(lambda: handle.read(_READ_CHUNK), b""):
                hasher.update(chunk)
        digest = hasher.hexdigest()
        cache.set(key, digest, timeout=None)
    return digest


def model_artefact_list(*, version: ModelVersion) -> list[ModelArtefact]:
    """The downloadable files this version has, in ``DOWNLOADABLE`` order."""
    entries = []
    for name in DOWNLOADABLE:
        storage_name = _storage_name(version, name)
        if default_storage.exists(storage_name):
            entries.append(ModelArtefact(name=name, size=default_storage.size(storage_name),
                                         sha256=_stored_digest(storage_name)))
        elif name in ON_DEMAND and default_storage.exists(_storage_name(version, ON_DEMAND[name])):
            entries.append(ModelArtefact(name=name, size=None, sha256=None))
    return entries


def model_artefact_open(*, version: ModelVersion, name: str):
    """``(artefact, open binary file)`` for one download; builds the SavedModel zip if needed.

    Unknown names and files this version does not have are 404 ``not_found``.
    """
    if name not in DOWNLOADABLE:
        raise NotFound(f"No artefact called {name!r}; the names are {', '.join(DOWNLOADABLE)}.",
                               code="not_found")
    storage_name = _storage_name(version, name)
    if not default_storage.exists(storage_name):
        source = ON_DEMAND.get(name)
        if source is None or not default_storage.exists(_storage_name(version, source)):
            raise NotFound(f"{version.name} has no {name}.", code="not_found")
        storage_name = _saved_model_zip_store(version=version, storage_name=storage_name)
    artefact = ModelArtefact(name=name, size=default_storage.size(storage_name), sha256=_stored_digest(storage_name))
    return artefact, default_storage.open(storage_name, "rb")


# Namespace of the per-version advisory lock around the SavedModel export (the second key is the version id).
SAVED_MODEL_EXPORT_LOCK = 0x57EE_5A0D
_export_lock_local = threading.Lock()  # the same guard where there is no PostgreSQL (the embedded SQLite)


@contextmanager
def _saved_model_export_lock(version: ModelVersion):
    """Held by one request (in any web process) at a time per version while it exports.

    A session-level PostgreSQL advisory lock rather than a transaction-scoped one: the export takes
    seconds to minutes and must not keep a transaction open. The lock goes with the connection if
    the process dies, so a killed export never blocks the next."""
    if connection.vendor != "postgresql":
        with _export_lock_local:
            yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [SAVED_MODEL_EXPORT_LOCK, version.pk])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [SAVED_MODEL_EXPORT_LOCK, version.pk])


def _saved_model_zip_store(*, version: ModelVersion, storage_name: str) -> str:
    """Store the SavedModel zip beside the artefact; built once per version, never concurrently.

    Concurrent first downloads wait for the one that builds (a TensorFlow export each was a
    gigabyte of memory in every web process) and then serve what it stored."""
    with _saved_model_export_lock(version):
        if not default_storage.exists(storage_name):
            _saved_model_zip_build(version=version, storage_name=storage_name)
    return storage_name


def _saved_model_zip_build(*, version: ModelVersion, storage_name: str) -> None:
    """Export the SavedModel, zip it and store it as ``storage_name``."""
    from mlcore.export import export_model  # TensorFlow: only when a SavedModel is first asked for

    model_dir = artefact_local_dir(prefix=version.artifact_path)
    with tempfile.TemporaryDirectory(prefix="steelqc-savedmodel-") as scratch:
        out_dir = Path(scratch) / "export"
        export_model(model_dir=model_dir, out_dir=out_dir, format="saved_model")
        archive = Path(scratch) / SAVED_MODEL_ZIP
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
                bundle.write(path, path.relative_to(out_dir).as_posix())
        with archive.open("rb") as handle:
            saved = default_storage.save(storage_name, File(handle))
    if saved != storage_name:
        # Stored meanwhile by a process that does not take the lock: theirs is kept, this copy goes.
        default_storage.delete(saved)

