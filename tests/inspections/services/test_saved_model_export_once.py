"""The SavedModel zip is built once per version even when first downloads arrive together: the
others wait for the build (a PostgreSQL advisory lock, so across web processes too) and serve
the stored zip. Threads here, each with its own database connection, as separate processes would."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from inspections.registry.services import artefacts
from inspections.registry.services.artefacts import SAVED_MODEL_ZIP, model_artefact_open
from mlcore.artefact import MODEL_FILE
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def version():
    version = ModelVersionFactory(artifact_path="models/export-once")
    for name in (MODEL_FILE, SAVED_MODEL_ZIP):
        if default_storage.exists(f"{version.artifact_path}/{name}"):
            default_storage.delete(f"{version.artifact_path}/{name}")
    default_storage.save(f"{version.artifact_path}/{MODEL_FILE}", ContentFile(b"keras bytes"))
    yield version
    for name in (MODEL_FILE, SAVED_MODEL_ZIP):
        if default_storage.exists(f"{version.artifact_path}/{name}"):
            default_storage.delete(f"{version.artifact_path}/{name}")


@pytest.fixture
def counted_builds(monkeypatch):
    """Replaces the TensorFlow export with one that counts, takes a while and stores a small zip."""
    builds, running, overlapped = [], [0], [False]
    guard = threading.Lock()

    def build(*, version, storage_name):
        with guard:
            running[0] += 1
            overlapped[0] |= running[0] > 1
            builds.append(threading.get_ident())
        time.sleep(0.5)
        default_storage.save(storage_name, ContentFile(f"zip of {version.name}".encode()))
        with guard:
            running[0] -= 1

    monkeypatch.setattr(artefacts, "_saved_model_zip_build", build)
    return builds, overlapped


def _download(version, results: list) -> None:
    try:
        artefact, handle = model_artefact_open(version=version, name=SAVED_MODEL_ZIP)
        with handle:
            results.append((artefact.sha256, handle.read()))
    except Exception as error:  # noqa: BLE001 - reported by the test below
        results.append(error)
    finally:
        connection.close()


def test_three_simultaneous_first_downloads_build_once_and_serve_the_same_zip(version, counted_builds):
    assert connection.vendor == "postgresql"
    builds, overlapped = counted_builds
    results: list = []
    threads = [threading.Thread(target=_download, args=(version, results)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(builds) == 1 and not overlapped[0]
    assert len(results) == 3 and not any(isinstance(result, Exception) for result in results), results
    assert {body for _, body in results} == {f"zip of {version.name}".encode()}
    assert len({digest for digest, _ in results}) == 1


def test_a_failed_build_releases_the_lock_for_the_next_download(version, monkeypatch):
    calls = []

    def failing(*, version, storage_name):
        calls.append("failed")
        raise RuntimeError("export failed")

    monkeypatch.setattr(artefacts, "_saved_model_zip_build", failing)
    with pytest.raises(RuntimeError):
        model_artefact_open(version=version, name=SAVED_MODEL_ZIP)

    def working(*, version, storage_name):
        calls.append("built")
        default_storage.save(storage_name, ContentFile(b"zip"))

    monkeypatch.setattr(artefacts, "_saved_model_zip_build", working)
    results: list = []
    thread = threading.Thread(target=_download, args=(version, results))  # another connection: would block
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive() and calls == ["failed", "built"]
    assert results[0][1] == b"zip"
