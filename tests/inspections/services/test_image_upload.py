import io

import pytest
from PIL import Image

from inspections.api.exceptions import http_status
from inspections.catalog.services.images import image_upload
from inspections.errors import ApplicationError
from inspections.models import ImageStatus, InspectionImage
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _files(media_root):
    return sorted(p for p in media_root.rglob("*") if p.is_file())


def test_upload_stores_a_pending_image_and_queues_inference_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("inspections.catalog.services.images.inference_enqueue", lambda *, image_ids: sent.append(image_ids))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = image_upload(content=image_bytes(seed=1), filename="line4/cam2/frame.png", uploaded_by=None,
                              source="line-4", external_id="coil-77")
        assert sent == []  # nothing is queued before the row is committed
    for callback in callbacks:
        callback()
    assert result.created
    image = InspectionImage.objects.get()
    assert (image.status, image.source, image.external_id, image.original_name) == (ImageStatus.PENDING, "line-4", "coil-77", "frame.png")
    assert sent == [[image.id]]
    assert image.file.read() == image_bytes(seed=1)


def test_same_bytes_uploaded_twice_is_one_image_and_one_file(media_root):
    first = image_upload(content=image_bytes(seed=2), filename="a.png", uploaded_by=None)
    files = _files(media_root)
    second = image_upload(content=image_bytes(seed=2), filename="b.png", uploaded_by=None)
    assert (first.created, second.created) == (True, False)
    assert second.image.id == first.image.id
    assert InspectionImage.objects.count() == 1
    assert _files(media_root) == files


@pytest.mark.parametrize(
    "content, code",
    [
        (b"", "empty_file"),
        (b"<html><script>alert(1)</script></html>", "undecodable_image"),
        (image_bytes(seed=3)[:60], "undecodable_image"),
    ],
)
def test_invalid_bytes_are_refused_and_nothing_is_stored(media_root, content, code):
    before = _files(media_root)
    with pytest.raises(ApplicationError) as error:
        image_upload(content=content, filename="x.png", uploaded_by=None)
    assert error.value.code == code
    assert InspectionImage.objects.count() == 0
    assert _files(media_root) == before


def test_formats_other_than_bmp_png_jpeg_tiff_are_refused():
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="GIF")
    with pytest.raises(ApplicationError) as error:
        image_upload(content=buffer.getvalue(), filename="x.gif", uploaded_by=None)
    assert error.value.code == "unsupported_format"


def test_too_many_pixels_is_refused_before_decoding(settings):
    settings.STEELQC_MAX_IMAGE_PIXELS = 32 * 32 - 1
    with pytest.raises(ApplicationError) as error:
        image_upload(content=image_bytes(seed=4, size=(32, 32)), filename="x.png", uploaded_by=None)
    assert error.value.code == "too_many_pixels"


def test_too_many_bytes_is_a_413(settings):
    settings.STEELQC_MAX_UPLOAD_BYTES = 100
    with pytest.raises(ApplicationError) as error:
        image_upload(content=image_bytes(seed=5), filename="x.png", uploaded_by=None)
    assert (error.value.code, http_status(error.value)) == ("file_too_large", 413)


def test_a_failed_row_write_removes_the_stored_file(media_root, monkeypatch):
    before = _files(media_root)

    def fail(self, *args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(InspectionImage, "save", fail)
    with pytest.raises(RuntimeError):
        image_upload(content=image_bytes(seed=6), filename="x.png", uploaded_by=None)
    assert _files(media_root) == before
