import io
import zipfile

import pytest

from inspections.catalog.services import zip_upload
from inspections.models import InspectionImage
from tests.factories import image_bytes

pytestmark = pytest.mark.django_db


def _zip(members: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _post_zip(client, content: bytes, name: str = "batch.zip", **extra):
    upload = io.BytesIO(content)
    upload.name = name
    return client.post("/upload/zip/", {"file": upload, **extra})


@pytest.fixture
def uploader(client, role_user):
    client.force_login(role_user("qa"))
    return client


def test_zip_members_are_uploaded_one_by_one_and_bad_ones_reported(uploader):
    archive = _zip({
        "a.png": image_bytes(seed=1),
        "deep/nested/dir/b.bmp": image_bytes(seed=2, fmt="BMP"),
        "../../etc/c.png": image_bytes(seed=3),
        "broken.png": b"\x89PNG\r\n\x1a\n not really",
        "notes.txt": b"hello",
        "again.png": image_bytes(seed=1),
        "__MACOSX/._a.png": b"resource fork",
    })
    response = _post_zip(uploader, archive, source="line-7")
    assert response.status_code == 200
    body = response.json()
    by_name = {r["name"]: r for r in body["results"]}
    assert [by_name[n]["status"] for n in ("a.png", "b.bmp", "c.png")] == ["created"] * 3
    assert by_name["broken.png"]["status"] == "refused" and by_name["broken.png"]["message"]
    assert by_name["notes.txt"]["status"] == "refused"
    assert by_name["again.png"]["status"] == "duplicate"
    assert by_name["__MACOSX/._a.png"]["status"] == "skipped"
    assert body["counts"] == {"created": 3, "duplicate": 1, "refused": 2, "skipped": 1}
    images = InspectionImage.objects.order_by("id")
    assert images.count() == 3
    assert {i.original_name for i in images} == {"a.png", "b.bmp", "c.png"}
    assert {i.source for i in images} == {"line-7"}
    assert all(".." not in i.file.name for i in images)


def test_a_member_with_corrupt_compressed_data_does_not_stop_the_rest(uploader):
    archive = bytearray(_zip({"first.png": image_bytes(seed=5, size=(64, 64)), "second.png": image_bytes(seed=6)}))
    # Damage the first member's compressed bytes (its data starts after the 30-byte header and its name).
    start = 30 + len("first.png")
    archive[start + 10:start + 40] = bytes(30)
    body = _post_zip(uploader, bytes(archive)).json()
    statuses = {r["name"]: r["status"] for r in body["results"]}
    assert statuses == {"first.png": "refused", "second.png": "created"}


def test_too_many_members_refuses_the_archive(uploader, monkeypatch):
    monkeypatch.setattr(zip_upload, "ZIP_MAX_MEMBERS", 2)
    response = _post_zip(uploader, _zip({f"{i}.png": image_bytes(seed=i) for i in range(3)}))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "zip_too_many_members"
    assert not InspectionImage.objects.exists()


def test_declared_size_over_the_limit_refuses_the_archive(uploader, monkeypatch):
    monkeypatch.setattr(zip_upload, "ZIP_MAX_TOTAL_UNCOMPRESSED", 100)
    response = _post_zip(uploader, _zip({"a.png": image_bytes(seed=1), "b.png": image_bytes(seed=2)}))
    assert response.status_code == 413 and response.json()["error"]["code"] == "zip_too_large"


def test_member_larger_than_the_file_limit_is_refused_alone(uploader, settings):
    big, small = image_bytes(seed=1, size=(200, 200)), image_bytes(seed=2, size=(8, 8))
    settings.STEELQC_MAX_UPLOAD_BYTES = len(small) + 10
    body = _post_zip(uploader, _zip({"big.png": big, "small.png": small})).json()
    assert {r["name"]: r["status"] for r in body["results"]} == {"big.png": "refused", "small.png": "created"}
    assert "limit" in body["results"][0]["message"]


def test_not_a_zip_is_a_clear_400(uploader):
    response = _post_zip(uploader, b"definitely not a zip")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_zip"


def test_viewer_cannot_upload(client, role_user):
    client.force_login(role_user("viewer"))
    assert _post_zip(client, _zip({"a.png": image_bytes(seed=1)})).status_code == 403
    assert client.get("/upload/bulk/").status_code == 403
    assert not InspectionImage.objects.exists()
