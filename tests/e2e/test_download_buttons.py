"""The version page's artefact downloads and the models page's dataset export, driven in Chromium."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from mlcore.artefact import CLASSES_FILE, SERVING_FILE

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _download(page, selector: str) -> bytes:
    with page.expect_download() as started:
        page.click(selector)
    return Path(started.value.path()).read_bytes()


def test_an_ml_admin_downloads_a_versions_files_from_its_page(page, users, tiny_model_dirs, registered_version):
    users("ml_admin", "ml-mira")
    log_in(page, "ml-mira")
    page.goto(f"/models/{registered_version.pk}/")
    for name in (SERVING_FILE, CLASSES_FILE):
        assert _download(page, f'[data-artefact="{name}"]') == (tiny_model_dirs[0] / name).read_bytes()
    assert page.locator("#artefacts tbody tr").count() >= 7


def test_a_viewer_sees_no_download_buttons(page, users, registered_version):
    users("viewer", "viewer-vic")
    log_in(page, "viewer-vic")
    page.goto(f"/models/{registered_version.pk}/")
    page.wait_for_selector("h1")
    assert page.locator("[data-artefact]").count() == 0


def test_an_ml_admin_exports_one_class_from_the_models_page(page, users, tmp_path):
    from inspections.catalog.services.dataset_import import dataset_import_folder
    from tests.factories import image_bytes

    for c, label in enumerate(("crazing", "inclusion")):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.png").write_bytes(image_bytes(seed=900 + 10 * c + i))
    dataset_import_folder(root=tmp_path)
    users("ml_admin", "ml-mira")
    log_in(page, "ml-mira")
    page.goto("/models/")
    page.select_option("#dataset-export select[name=label]", "inclusion")
    archive = zipfile.ZipFile(io.BytesIO(_download(page, "#dataset-export button")))
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["label"] for row in rows] == ["inclusion"] * 3
    image_folders = {name.split("/")[0] for name in archive.namelist() if "/" in name} - {"annotations", "labels"}
    assert image_folders == {"inclusion"}  # annotations/ and labels/ carry the defect boxes (COCO, YOLO)
    assert "annotations/coco.json" in archive.namelist()
