from collections import Counter
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.errors import ApplicationError
from inspections.models import InspectionImage, LabelSource, Split
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _write_dataset(root: Path, per_class: dict[str, int], *, offset: int = 0, fmt: str = "PNG") -> Path:
    ext = {"PNG": "png", "BMP": "bmp", "JPEG": "jpg", "TIFF": "tif"}[fmt]
    for c, (label, n) in enumerate(per_class.items()):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / label / f"{label}_{offset + i}.{ext}").write_bytes(image_bytes(seed=(c + 1) * 10_000 + offset + i, fmt=fmt))
    return root


def _stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()]


def test_import_creates_labelled_images_and_missing_classes(tmp_path):
    root = _write_dataset(tmp_path / "data", {"crazing": 3, "new_defect": 2})
    report = dataset_import_folder(root=root, source="line-4")
    assert report.added == Counter({"crazing": 3, "new_defect": 2})
    images = InspectionImage.objects.all()
    assert images.count() == 5
    assert set(images.values_list("label__name", flat=True)) == {"crazing", "new_defect"}
    assert set(images.values_list("label_source", flat=True)) == {LabelSource.IMPORT}
    assert set(images.values_list("source", flat=True)) == {"line-4"}
    image = images.first()
    assert image.file.read() == (root / image.label.name / image.original_name).read_bytes()


@pytest.mark.parametrize("fmt", ["BMP", "JPEG", "TIFF"])
def test_import_accepts_bmp_jpeg_and_tiff(tmp_path, fmt):
    report = dataset_import_folder(root=_write_dataset(tmp_path / "d", {"scratches": 2}, fmt=fmt))
    assert report.added["scratches"] == 2
    assert set(InspectionImage.objects.values_list("format", flat=True)) == {fmt}


def test_second_import_of_the_same_folder_adds_nothing(tmp_path, media_root):
    root = _write_dataset(tmp_path / "data", {"crazing": 4, "patches": 4})
    dataset_import_folder(root=root)
    files_before = _stored_files(media_root)
    splits_before = dict(InspectionImage.objects.values_list("sha256", "split"))
    report = dataset_import_folder(root=root)
    assert sum(report.added.values()) == 0
    assert sum(report.already_present.values()) == 8
    assert InspectionImage.objects.count() == 8
    assert _stored_files(media_root) == files_before
    assert dict(InspectionImage.objects.values_list("sha256", "split")) == splits_before


def test_byte_identical_files_become_one_image_and_are_reported(tmp_path):
    root = _write_dataset(tmp_path / "data", {"patches": 3})
    (root / "patches" / "copy.png").write_bytes((root / "patches" / "patches_1.png").read_bytes())
    report = dataset_import_folder(root=root)
    assert InspectionImage.objects.count() == 3
    assert report.duplicates == [("patches/patches_1.png", "patches/copy.png")] or report.duplicates == [
        ("patches/copy.png", "patches/patches_1.png")
    ]


def test_unreadable_file_is_refused_and_the_rest_imported(tmp_path):
    root = _write_dataset(tmp_path / "data", {"inclusion": 3})
    (root / "inclusion" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    report = dataset_import_folder(root=root)
    assert report.added["inclusion"] == 3
    assert [path for path, _ in report.refused] == ["inclusion/broken.png"]
    assert InspectionImage.objects.count() == 3


def test_splits_are_stratified_per_class(tmp_path):
    dataset_import_folder(root=_write_dataset(tmp_path / "data", {"crazing": 20, "scratches": 40}))
    counts = Counter(InspectionImage.objects.values_list("label__name", "split"))
    assert (counts["crazing", "train"], counts["crazing", "val"], counts["crazing", "test"]) == (14, 3, 3)
    assert (counts["scratches", "train"], counts["scratches", "val"], counts["scratches", "test"]) == (28, 6, 6)
    assert not InspectionImage.objects.filter(split=Split.UNASSIGNED).exists()


def test_later_imports_never_move_the_test_split(tmp_path):
    dataset_import_folder(root=_write_dataset(tmp_path / "first", {"crazing": 20}))
    test_before = set(InspectionImage.objects.filter(split=Split.TEST).values_list("sha256", flat=True))
    dataset_import_folder(root=_write_dataset(tmp_path / "second", {"crazing": 20}, offset=100))
    test_after = set(InspectionImage.objects.filter(split=Split.TEST).values_list("sha256", flat=True))
    assert test_before < test_after
    assert len(test_after) == 6


def test_a_failure_while_writing_rows_leaves_no_files_and_no_rows(tmp_path, media_root, monkeypatch):
    root = _write_dataset(tmp_path / "data", {"crazing": 3})
    files_before = _stored_files(media_root)

    def explode(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(InspectionImage.objects, "bulk_create", explode)
    with pytest.raises(RuntimeError):
        dataset_import_folder(root=root)
    assert InspectionImage.objects.count() == 0
    assert _stored_files(media_root) == files_before


def test_a_folder_without_class_folders_is_a_clear_error(tmp_path):
    (tmp_path / "flat.png").write_bytes(image_bytes())
    with pytest.raises(ApplicationError) as error:
        dataset_import_folder(root=tmp_path)
    assert error.value.code == "no_classes"


def test_command_prints_counts_and_fails_cleanly_on_a_missing_folder(tmp_path, capsys):
    root = _write_dataset(tmp_path / "data", {"crazing": 2, "patches": 1})
    call_command("import_dataset", str(root), "--source", "demo")
    out = capsys.readouterr().out
    assert "crazing" in out and "total" in out
    assert "Imported 3 new images" in out
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_dataset", str(tmp_path / "missing"))


def test_neu_import_gives_240_per_class_with_the_known_duplicate_pair(neu_dir):
    report = dataset_import_folder(root=neu_dir, source="neu")
    assert dict(report.found) == {label: 240 for label in report.found} and len(report.found) == 6
    assert sum(report.added.values()) == 1439
    assert [sorted(pair) for pair in report.duplicates] == [["patches/Pa_101.bmp", "patches/Pa_105.bmp"]]
    counts = Counter(InspectionImage.objects.values_list("label__name", "split"))
    for label in report.found:
        assert counts[label, "test"] == 36, label


def test_images_mlcore_would_train_on_but_uploads_refuse_are_reported_not_skipped(tmp_path):
    # The import finds images with mlcore's class-folder scan, so a WebP in a class folder is
    # listed as refused (uploads accept no WebP) instead of silently left out.
    root = _write_dataset(tmp_path / "data", {"crazing": 1, "patches": 1})
    (root / "crazing" / "strip.webp").write_bytes(image_bytes(seed=99, fmt="WEBP"))
    (root / "crazing" / "notes.txt").write_text("not an image")
    report = dataset_import_folder(root=root)
    assert [path for path, _ in report.refused] == ["crazing/strip.webp"]
    assert "not accepted" in report.refused[0][1]
    assert report.found == Counter({"crazing": 2, "patches": 1}) and sum(report.added.values()) == 2


def test_a_relative_folder_reports_a_manifest_only_file_that_duplicates_another(tmp_path, monkeypatch):
    """Files only the manifest names come resolved; the report still shows them relative to the
    folder as the user spelled it (a relative path once raised ValueError here)."""
    import csv
    import hashlib

    root = _write_dataset(tmp_path / "data", {"patches": 2})
    (root / "excluded").mkdir()
    twin = (root / "patches" / "patches_0.png").read_bytes()
    (root / "excluded" / "twin.png").write_bytes(twin)
    (root / "excluded" / "broken.png").write_bytes(b"not an image at all")
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "sha256", "label", "split"])
        writer.writerow(["excluded/twin.png", "0" * 64, "patches", "train"])
        writer.writerow(["excluded/broken.png", hashlib.sha256(b"not an image at all").hexdigest(), "patches", "test"])
    monkeypatch.chdir(tmp_path)
    report = dataset_import_folder(root=Path("data"))
    assert [path for path, _ in report.refused] == ["excluded/broken.png"]
    assert len(report.duplicates) == 1 and "excluded/twin.png" in report.duplicates[0]
    assert InspectionImage.objects.count() == 2
