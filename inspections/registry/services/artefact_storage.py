"""Model artefact directories in Django storage, and local copies for the workers that load them.

Artefacts are written once and never changed, so a local copy keyed by the storage path stays
valid; with local file storage no copy is made at all.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage


def artefact_store(*, local_dir: Path, prefix: str) -> list[str]:
    """Copy every file under ``local_dir`` to storage under ``prefix``; returns the names written."""
    written: list[str] = []
    try:
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            name = f"{prefix.rstrip('/')}/{path.relative_to(local_dir).as_posix()}"
            with path.open("rb") as handle:
                saved = default_storage.save(name, File(handle))
            if saved != name:
                default_storage.delete(saved)
                raise FileExistsError(f"storage already holds {name}; artefacts are never overwritten")
            written.append(saved)
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return written


def artefact_delete(*, names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _storage_files(prefix: str) -> list[str]:
    directories, files = default_storage.listdir(prefix)
    names = [f"{prefix}/{name}" for name in files]
    for directory in directories:
        names.extend(_storage_files(f"{prefix}/{directory}"))
    return names


def artefact_local_dir(*, prefix: str) -> Path:
    """A local folder holding the artefact stored under ``prefix`` (downloaded once if remote)."""
    prefix = prefix.rstrip("/")
    try:
        local = Path(default_storage.path(prefix))
    except NotImplementedError:
        local = None
    if local is not None:
        return local

    target = Path(settings.STEELQC_CACHE_DIR) / "artefacts" / prefix.replace("/", "__")
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
    try:
        for name in _storage_files(prefix):
            destination = staging / name[len(prefix) + 1:]
            destination.parent.mkdir(parents=True, exist_ok=True)
            with default_storage.open(name, "rb") as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another process finished the same download first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
