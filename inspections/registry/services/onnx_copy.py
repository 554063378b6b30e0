"""The ONNX copy of a model version (``model.onnx``), for line PCs that run ONNX Runtime or OpenVINO.

Built once per version by the training worker, never in a web process: the first download that
finds neither the copy nor its check record queues ``BUILD_ONNX_COPY`` and is answered 503
``artefact_building``. The worker converts the artefact (``mlcore.onnx_copy``), checks the copy
against Keras on the version's held-out images (its run's frozen test split, then validation
split, of the copy's input shape) and stores ``onnx_check.json`` beside the artefact, with
``model.onnx`` only when the check passed. The record's presence means "decided": a copy that was
left out is not built again, and its download answers 404 ``artefact_left_out`` with the reason.
Backups leave out what is made on demand, so after a restore a record may keep a copy that is
not there: that one is built again.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage

from inspections.catalog.services.stored_files import local_copies
from inspections.queueing import onnx_copy_enqueue
from inspections.registry.models import ModelVersion
from inspections.registry.selectors import model_version_check_image_files
from inspections.registry.services.artefact_storage import artefact_local_dir
from inspections.registry.services.artefacts import artefact_build_lock, artefact_storage_name
from mlcore.artefact import CONFIG_FILE, ONNX_CHECK_FILE, ONNX_FILE

logger = logging.getLogger(__name__)

ONNX_RETRY_AFTER_S = 30      # what a first download is told: conversion and check take about this long
ONNX_CHECK_IMAGES = 32       # held-out images the copy is checked on, at most
# A request queues the build at most this often per version; the worker's lock and stored record
# make a second message harmless, and a lost one is queued again after this.
ONNX_REQUEST_INTERVAL_S = 600
ONNX_BUILD_LOCK = 0x57EE_0AA1  # namespace of the per-version advisory lock around the build


def model_version_onnx_request(*, version: ModelVersion) -> bool:
    """Ask the training worker for ``version``'s ONNX copy (at most once per interval); False when
    the queue cannot be reached."""
    key = f"steelqc:onnx-copy-requested:{version.pk}"
    if not cache.add(key, 1, timeout=ONNX_REQUEST_INTERVAL_S):
        return True
    if onnx_copy_enqueue(version_id=version.pk):
        return True
    cache.delete(key)
    return False


def model_version_onnx_build(*, version_id: int) -> dict | None:
    """Build, check and store the version's ONNX copy unless it was decided already; returns the
    check record (None for a version that no longer exists)."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.info("model version %s is gone; no ONNX copy to build", version_id)
        return None
    record_name = artefact_storage_name(version, ONNX_CHECK_FILE)
    with artefact_build_lock(version=version, namespace=ONNX_BUILD_LOCK):
        if default_storage.exists(record_name):
            with default_storage.open(record_name, "rb") as handle:
                record = json.load(handle)
            if not record.get("included") or default_storage.exists(artefact_storage_name(version, ONNX_FILE)):
                return record
            # It kept a copy that is not there (a restored backup leaves out what is made on demand).
            default_storage.delete(record_name)
        return _build(version)


def _build(version: ModelVersion) -> dict:
    from mlcore.io import load_image
    from mlcore.model import read_json
    from mlcore.onnx_copy import onnx_copy_export, onnx_input_shape

    model_dir = artefact_local_dir(prefix=version.artifact_path)
    height, width, _ = onnx_input_shape(read_json(model_dir / CONFIG_FILE))
    names = model_version_check_image_files(version=version, width=width, height=height, limit=ONNX_CHECK_IMAGES)
    with tempfile.TemporaryDirectory(prefix=f"steelqc-onnx-v{version.number}-") as scratch:
        paths = local_copies(names=names, folder=Path(scratch) / "images")
        record = onnx_copy_export(model_dir=model_dir, out_dir=Path(scratch) / "out",
                                  check_images=[load_image(paths[name]) for name in names],
                                  check_source="held-out images of the version's training run")
        # The copy first, the record last: a stored record means the decision is complete.
        for name in ((ONNX_FILE,) if record["included"] else ()) + (ONNX_CHECK_FILE,):
            _store(Path(scratch) / "out" / name, artefact_storage_name(version, name))
    logger.info("ONNX copy of %s %s", version.name,
                "stored" if record["included"] else f"left out: {record.get('reason')}")
    return record


def _store(path: Path, storage_name: str) -> None:
    with path.open("rb") as handle:
        saved = default_storage.save(storage_name, File(handle))
    if saved != storage_name:  # stored meanwhile by a process that does not take the lock: theirs is kept
        default_storage.delete(saved)
