"""A model version's artefacts as downloads for the edge: which files, their size and sha256, the
SavedModel copy, exported on first request and kept beside the artefact in storage, and the ONNX
copy, built on first request by the training worker (``onnx_copy.py``).

The file names are mlcore's (``mlcore.artefact``); the SavedModel zip is the one name added here,
since it exists only as a download. Artefacts never change once stored (files are only added), so
a digest computed once is cached for good -- keyed by the file's size as well as its name, since a
copy made on demand is made again after a restore left it out, and need not come out byte for byte
the same.
"""

from __future__ import annotations

import hashlib
import json
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

from inspections.errors import NotFound, Unavailable
from inspections.registry.models import ModelVersion
from inspections.registry.services.artefact_storage import artefact_local_dir
from mlcore.artefact import (
    ANOMALY_FEATURES_FILE,
    ANOMALY_MEMORY_FILE,
    CLASSES_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ONNX_CHECK_FILE,
    ONNX_FILE,
    OOD_FILE,
    SERVING_FILE,
    SERVING_INT8_FILE,
    SUSPECTS_FILE,
)

SAVED_MODEL_ZIP = "saved_model.zip"  # mlcore.export's SavedModel folder and its side files, zipped
DOWNLOADABLE = (MODEL_FILE, SERVING_FILE, SERVING_INT8_FILE, SAVED_MODEL_ZIP, ONNX_FILE, ONNX_CHECK_FILE, CLASSES_FILE,
                CONFIG_FILE, METRICS_FILE, OOD_FILE, SUSPECTS_FILE, ANOMALY_FEATURES_FILE, ANOMALY_MEMORY_FILE)
ON_DEMAND = {SAVED_MODEL_ZIP: MODEL_FILE, ONNX_FILE: MODEL_FILE}  # produced on first download from this file
# Built by a worker and kept only when it passed its check; this record is stored either way, so a
# copy that was left out is not built again and its download says why.
CHECKED = {ONNX_FILE: ONNX_CHECK_FILE}
CONTENT_TYPES = {".json": "application/json", ".zip": "application/zip"}
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelArtefact:
    name: str
    size: int | None     # None: produced on its first download
    sha256: str | None

    @property
    def built_by_worker(self) -> bool:
        """Made by the training worker when first asked for (its download answers 503 until then)."""
        return self.name in CHECKED

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(Path(self.name).suffix, "application/octet-stream")


def artefact_storage_name(version: ModelVersion, name: str) -> str:
    return f"{version.artifact_path.rstrip('/')}/{name}"


def _stored_digest(storage_name: str, size: int) -> str:
    key = f"steelqc:artefact-sha256:{storage_name}:{size}"
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
    """The downloadable files this version has, in ``DOWNLOADABLE`` order; one produced on its first
    download is listed with size and sha256 None until then (unless its check left it out)."""
    entries = []
    for name in DOWNLOADABLE:
        storage_name = artefact_storage_name(version, name)
        if default_storage.exists(storage_name):
            size = default_storage.size(storage_name)
            entries.append(ModelArtefact(name=name, size=size, sha256=_stored_digest(storage_name, size)))
        elif (name in ON_DEMAND and default_storage.exists(artefact_storage_name(version, ON_DEMAND[name]))
              and not (name in CHECKED and _left_out(model_artefact_check(version=version, name=name)))):
            entries.append(ModelArtefact(name=name, size=None, sha256=None))
    return entries


def _left_out(record: dict | None) -> bool:
    """The check decided against the copy. A record that kept it while the copy is missing (a restored
    backup leaves out what is made on demand) decides nothing: the copy is built again."""
    return record is not None and not record.get("included")


def model_artefact_check(*, version: ModelVersion, name: str) -> dict | None:
    """The stored check record of a worker-built copy (``CHECKED``); None while it has none."""
    storage_name = artefact_storage_name(version, CHECKED[name])
    if not default_storage.exists(storage_name):
        return None
    with default_storage.open(storage_name, "rb") as handle:
        return json.load(handle)


def model_artefact_open(*, version: ModelVersion, name: str):
    """``(artefact, open binary file)`` for one download; builds the SavedModel zip if needed.

    Unknown names and files this version does not have are 404 ``not_found``.
    """
    if name not in DOWNLOADABLE:
        raise NotFound(f"No artefact called {name!r}; the names are {', '.join(DOWNLOADABLE)}.",
                               code="not_found")
    storage_name = artefact_storage_name(version, name)
    if not default_storage.exists(storage_name):
        source = ON_DEMAND.get(name)
        if source is None or not default_storage.exists(artefact_storage_name(version, source)):
            raise NotFound(f"{version.name} has no {name}.", code="not_found")
        if name in CHECKED:
            _worker_built_missing(version=version, name=name)
        storage_name = _saved_model_zip_store(version=version, storage_name=storage_name)
    size = default_storage.size(storage_name)
    artefact = ModelArtefact(name=name, size=size, sha256=_stored_digest(storage_name, size))
    return artefact, default_storage.open(storage_name, "rb")


def _worker_built_missing(*, version: ModelVersion, name: str) -> None:
    """Always raises: 404 ``artefact_left_out`` with the check's reason when the copy was left out;
    else the build is asked of the worker and the answer is 503 ``artefact_building``."""
    from inspections.registry.services.onnx_copy import ONNX_RETRY_AFTER_S, model_version_onnx_request

    record = model_artefact_check(version=version, name=name)
    if _left_out(record):
        raise NotFound(f"{version.name} has no {name}: it was left out ({record.get('reason', 'no reason recorded')}). "
                       f"The check's figures are in {CHECKED[name]}.", code="artefact_left_out",
                       details={"reason": record.get("reason", ""), "check": CHECKED[name]})
    if not model_version_onnx_request(version=version):
        raise Unavailable(f"{name} of {version.name} is built by the training worker, whose queue cannot be "
                          "reached now; try again later.", code="queue_unavailable")
    raise Unavailable(f"{name} of {version.name} is being built and checked by the training worker (once per "
                      f"version); try again in about {ONNX_RETRY_AFTER_S} s.", code="artefact_building",
                      details={"retry_after_s": ONNX_RETRY_AFTER_S})


# Namespace of the per-version advisory lock around the SavedModel export (the second key is the version id).
SAVED_MODEL_EXPORT_LOCK = 0x57EE_5A0D
_export_lock_local = threading.Lock()  # the same guard where there is no PostgreSQL (the embedded SQLite)


@contextmanager
def artefact_build_lock(*, version: ModelVersion, namespace: int):
    """Held by one process at a time per (namespace, version) while it builds a copy of the artefact.

    A session-level PostgreSQL advisory lock rather than a transaction-scoped one: the export takes
    seconds to minutes and must not keep a transaction open. The lock goes with the connection if
    the process dies, so a killed export never blocks the next."""
    if connection.vendor != "postgresql":
        with _export_lock_local:
            yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [namespace, version.pk])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, version.pk])


def _saved_model_zip_store(*, version: ModelVersion, storage_name: str) -> str:
    """Store the SavedModel zip beside the artefact; built once per version, never concurrently.

    Concurrent first downloads wait for the one that builds (a TensorFlow export each was a
    gigabyte of memory in every web process) and then serve what it stored."""
    with artefact_build_lock(version=version, namespace=SAVED_MODEL_EXPORT_LOCK):
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

