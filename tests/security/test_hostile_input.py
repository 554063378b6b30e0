"""Hostile input through the REST API: every refusal is a 4xx in the one error shape, never a 5xx,
and leaves no row and no stored file behind; every acceptance stores the image exactly once.

The tables below are the record of what each kind of input gets (docs/operations.md, "Hostile input").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.apps import apps
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from tests.factories import InspectionImageFactory, ModelVersionFactory, UserFactory
from tests.inspections.api.conftest import assert_error
from tests.security import images as im

pytestmark = pytest.mark.django_db

UPLOAD = "/api/v1/images/"
BOUNDARY = "hostile-boundary-7d3f"


# --- helpers ---------------------------------------------------------------------------------

def client_as(role: str) -> APIClient:
    client = APIClient()
    user = UserFactory(roles=[role])
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='test').secret}")
    return client


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart body written by hand, so file names reach the server exactly as given.

    Each part is (field name, file name or None for a plain field, content).
    """
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode("utf-8", "surrogateescape")
                 + (b"Content-Type: application/octet-stream\r\n" if filename is not None else b"")
                 + b"\r\n" + content + b"\r\n")
    return body + f"--{BOUNDARY}--\r\n".encode()


def post_files(client: APIClient, *files: tuple[str, bytes], path: str = UPLOAD, extra: tuple = ()):
    body = multipart(*[("file", name, content) for name, content in files], *extra)
    return client.generic("POST", path, body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


def row_counts() -> dict[str, int]:
    # The auth audit trail and the API tokens are left out: they hold the test client's own token
    # and sign-in (client_as), not anything the request under test stored.
    return {model.__name__: model.objects.count() for model in apps.get_app_config("inspections").get_models()
            if model.__name__ not in ("AuthEvent", "ApiToken")}


def media_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file()}


@pytest.fixture
def unchanged(media_root):
    """Asserts, after the request under test, that nothing was stored."""
    before = (row_counts(), media_files(media_root))

    def check() -> None:
        assert row_counts() == before[0]
        assert media_files(media_root) == before[1]

    return check


@dataclass(frozen=True)
class UploadCase:
    """A file sent to the upload endpoint: what it is (the test's id), its bytes, its file name."""

    kind: str
    content: Callable[[], bytes]
    filename: str


# --- refused uploads -------------------------------------------------------------------------

@dataclass(frozen=True)
class RefusedUpload(UploadCase):
    status: int
    code: str
    settings: dict = field(default_factory=dict)


REFUSED_UPLOADS = [
    RefusedUpload("zero bytes", lambda: b"", "empty.png", 400, "empty_file"),
    RefusedUpload("truncated PNG", lambda: im.truncated(im.png(seed=1)), "t.png", 400, "undecodable_image"),
    RefusedUpload("truncated JPEG", lambda: im.truncated(im.encode(im.texture("RGB", seed=2), "JPEG")), "t.jpg",
                  400, "undecodable_image"),
    RefusedUpload("truncated BMP", lambda: im.truncated(im.encode(im.texture(seed=3), "BMP")), "t.bmp", 400,
                  "undecodable_image"),
    RefusedUpload("truncated TIFF", lambda: im.truncated(im.encode(im.texture(seed=4), "TIFF")), "t.tif", 400,
                  "undecodable_image"),
    RefusedUpload("PNG signature only", lambda: b"\x89PNG\r\n\x1a\n", "sig.png", 400, "undecodable_image"),
    RefusedUpload("PNG with a broken CRC", im.png_with_bad_crc, "crc.png", 400, "undecodable_image"),
    RefusedUpload("HTML named .png", lambda: b"<!doctype html><html><body>hi</body></html>", "page.png", 400,
                  "undecodable_image"),
    RefusedUpload("shell script named .png", lambda: b"#!/bin/sh\nrm -rf /\n", "run.png", 400, "undecodable_image"),
    RefusedUpload("SVG with script", im.svg, "vector.svg", 400, "undecodable_image"),
    RefusedUpload("PDF header named .jpg", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "doc.jpg",
                  400, "undecodable_image"),
    RefusedUpload("ZIP archive named .png", im.zip_archive, "archive.png", 400, "undecodable_image"),
    RefusedUpload("random bytes", lambda: bytes(range(256)) * 16, "noise.bmp", 400, "undecodable_image"),
    RefusedUpload("decompression bomb (49 Mpx PNG, tiny file)", im.png_bomb, "bomb.png", 400, "too_many_pixels"),
    RefusedUpload("20000x20000 header, no pixel data", lambda: im.png_header_only(20000, 20000), "huge.png", 400,
                  "too_many_pixels"),
    RefusedUpload("8000x8000 header (under Pillow's own limit)", lambda: im.png_header_only(8000, 8000), "big.png",
                  400, "too_many_pixels"),
    RefusedUpload("PNG text-chunk bomb", im.png_text_bomb, "text.png", 400, "undecodable_image"),
    RefusedUpload("animated GIF", im.animated_gif, "anim.gif", 400, "unsupported_format"),
    RefusedUpload("single-frame GIF", lambda: im.encode(im.texture("P", seed=5), "GIF"), "one.gif", 400,
                  "unsupported_format"),
    RefusedUpload("WebP", im.webp, "photo.webp", 400, "unsupported_format"),
    RefusedUpload("animated PNG (APNG)", im.apng, "anim.png", 400, "multi_frame_image"),
    RefusedUpload("multi-page TIFF", im.multipage_tiff, "pages.tif", 400, "multi_frame_image"),
    RefusedUpload("file over STEELQC_MAX_UPLOAD_BYTES", lambda: im.png(seed=6, size=(256, 256)), "large.png", 413,
                  "file_too_large", settings={"STEELQC_MAX_UPLOAD_BYTES": 4096}),
]


# A decoder's own words: object reprs, addresses, exception class names.
INTERNALS = re.compile(r"<[\w.]+ object|0x[0-9a-f]{6,}|BytesIO|\w+Error\b|\w+Exception\b")


@pytest.mark.parametrize("case", REFUSED_UPLOADS, ids=lambda c: c.kind)
def test_refused_upload(case, settings, unchanged):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    response = post_files(client_as("integrator"), (case.filename, case.content()))
    assert_error(response, case.status, case.code)
    message = response.json()["error"]["message"]
    assert not INTERNALS.search(message), f"the refusal speaks of internals, not the file: {message!r}"
    unchanged()


# --- accepted uploads ------------------------------------------------------------------------

@dataclass(frozen=True)
class AcceptedUpload(UploadCase):
    format: str
    original_name: str | None = None  # what the row should keep; None: the file name as sent


ACCEPTED_UPLOADS = [
    AcceptedUpload("1x1 PNG", lambda: im.png(seed=20, size=(1, 1)), "dot.png", "PNG"),
    AcceptedUpload("16-bit grayscale TIFF", im.tiff_16_bit, "deep.tif", "TIFF"),
    AcceptedUpload("32-bit float TIFF", im.tiff_float, "float.tif", "TIFF"),
    AcceptedUpload("LZW-compressed TIFF", im.tiff_lzw, "lzw.tiff", "TIFF"),
    AcceptedUpload("CMYK JPEG", im.cmyk_jpeg, "print.jpg", "JPEG"),
    AcceptedUpload("EXIF-rotated JPEG", im.exif_rotated_jpeg, "rotated.jpeg", "JPEG"),
    AcceptedUpload("palette PNG", lambda: im.png(seed=21, mode="P"), "palette.png", "PNG"),
    AcceptedUpload("RGBA PNG", lambda: im.png(seed=22, mode="RGBA"), "alpha.png", "PNG"),
    AcceptedUpload("bilevel PNG", lambda: im.png(seed=23, mode="1"), "bits.png", "PNG"),
    AcceptedUpload("grayscale BMP", lambda: im.encode(im.texture(seed=24), "BMP"), "strip.bmp", "BMP"),
    AcceptedUpload("PNG with HTML appended (polyglot)", im.polyglot_png, "poly.png", "PNG"),
    AcceptedUpload("JPEG content named .png", lambda: im.encode(im.texture("RGB", seed=25), "JPEG"), "liar.png",
                   "JPEG"),
    AcceptedUpload("path traversal in the file name", lambda: im.png(seed=26), "../../../../etc/passwd.png", "PNG",
                   original_name="passwd.png"),
    AcceptedUpload("Windows path in the file name", lambda: im.png(seed=27), "..\\..\\windows\\win.ini.png", "PNG",
                   original_name="win.ini.png"),
    AcceptedUpload("250-character file name", lambda: im.png(seed=28), "a" * 250 + ".png", "PNG"),
    AcceptedUpload("unicode and control characters in the file name", lambda: im.png(seed=29),
                   "鋼板\x1b[31m\x07\u202egnp.exe\x7f.png", "PNG", original_name="鋼板[31mgnp.exe.png"),
    AcceptedUpload("HTML in the file name", lambda: im.png(seed=30), "<img src=x onerror=alert(1)>.png", "PNG"),
]


@pytest.mark.parametrize("case", ACCEPTED_UPLOADS, ids=lambda c: c.kind)
def test_accepted_upload_is_stored_exactly_once(case, media_root):
    from inspections.models import InspectionImage

    content = case.content()
    client = client_as("qa")
    files_before = media_files(media_root)
    response = post_files(client, (case.filename, content))
    assert response.status_code == 201, response.content[:500]
    body = response.json()
    image = InspectionImage.objects.get(pk=body["id"])
    assert image.format == case.format
    # Stored under its content address, whatever the client called it.
    assert image.file.name == f"images/{image.sha256[:2]}/{image.sha256}.{image.file.name.rsplit('.', 1)[-1]}"
    assert media_files(media_root) - files_before == {image.file.name}
    assert (Path(media_root) / image.file.name).read_bytes() == content
    name = image.original_name
    assert len(name) <= 255 and "/" not in name and "\\" not in name
    assert all(ch.isprintable() for ch in name), repr(name)
    if case.original_name is not None:
        assert name == case.original_name
    # The same bytes again: the same image, nothing new stored.
    again = post_files(client, ("other-name.png", content))
    assert again.status_code == 200
    assert again.json()["id"] == image.pk
    assert InspectionImage.objects.filter(sha256=image.sha256).count() == 1
    assert media_files(media_root) - files_before == {image.file.name}


def test_an_accepted_polyglot_is_served_as_an_image_that_browsers_will_not_sniff(media_root):
    client = client_as("qa")
    image_id = post_files(client, ("poly.png", im.polyglot_png())).json()["id"]
    served = client.get(f"/api/v1/images/{image_id}/file/")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Disposition"].startswith("inline; filename=")
    assert "script" not in served["Content-Disposition"]


# --- malformed upload requests ---------------------------------------------------------------

@dataclass(frozen=True)
class RawRequest:
    kind: str
    method: str
    path: str
    status: int
    code: str | None
    body: Callable[[], bytes] = lambda: b""
    content_type: str = "application/json"
    role: str = "ml_admin"
    settings: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


def _many_files(n: int) -> bytes:
    return multipart(*[("file", f"{i}.png", im.png(seed=100 + i, size=(4, 4))) for i in range(n)])


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def _bad_wait(value: str, *, seed: int, note: str = "") -> RawRequest:
    """A good image uploaded with a ?wait= value the API refuses."""
    return RawRequest(f"?wait={value}{note}", "POST", f"{UPLOAD}?wait={value}", 400, "invalid",
                      lambda: multipart(("file", "a.png", im.png(seed=seed))), MULTIPART)

UPLOAD_REQUESTS = [
    RawRequest("JSON body to the upload endpoint", "POST", UPLOAD, 415, "unsupported_media_type",
               lambda: b'{"file": "aGVsbG8="}'),
    RawRequest("plain-text body to the upload endpoint", "POST", UPLOAD, 415, "unsupported_media_type",
               lambda: b"hello", "text/plain"),
    RawRequest("XML body to the upload endpoint", "POST", UPLOAD, 415, "unsupported_media_type",
               lambda: b"<file>x</file>", "application/xml"),
    RawRequest("form field named file holding text", "POST", UPLOAD, 400, "invalid",
               lambda: b"file=not-a-file", "application/x-www-form-urlencoded"),
    RawRequest("multipart without a file field", "POST", UPLOAD, 400, "invalid",
               lambda: multipart(("source", None, b"line-3")), MULTIPART),
    RawRequest("multipart file part with an empty file name", "POST", UPLOAD, 400, "invalid",
               lambda: multipart(("file", "", im.png(seed=40))), MULTIPART),
    RawRequest("multipart body with a boundary that never appears", "POST", UPLOAD, 400, None,
               lambda: b"garbage without any boundary", MULTIPART),
    RawRequest("multipart content type without a boundary", "POST", UPLOAD, 400, "parse_error",
               lambda: multipart(("file", "a.png", im.png(seed=41))), "multipart/form-data"),
    RawRequest("1000-character file name (Django's multipart header limit)", "POST", UPLOAD, 400, "parse_error",
               lambda: multipart(("file", "n" * 1000 + ".png", im.png(seed=53))), MULTIPART),
    RawRequest("21 files in one request (limit 20)", "POST", UPLOAD, 400, "invalid", lambda: _many_files(21), MULTIPART),
    RawRequest("101 files in one request (Django's own limit)", "POST", UPLOAD, 400, None,
               lambda: _many_files(101), MULTIPART),
    RawRequest("1001 form fields", "POST", UPLOAD, 400, "bad_request",
               lambda: multipart(*[(f"f{i}", None, b"x") for i in range(1001)]), MULTIPART),
    RawRequest("form fields over DATA_UPLOAD_MAX_MEMORY_SIZE", "POST", UPLOAD, 413, "request_too_large",
               lambda: multipart(("source", None, b"x" * 20_000), ("file", "a.png", im.png(seed=42))), MULTIPART,
               settings={"DATA_UPLOAD_MAX_MEMORY_SIZE": 10_000}),
    RawRequest("form-encoded body over DATA_UPLOAD_MAX_MEMORY_SIZE", "POST", UPLOAD, 413, "request_too_large",
               lambda: b"source=" + b"x" * 20_000, "application/x-www-form-urlencoded",
               settings={"DATA_UPLOAD_MAX_MEMORY_SIZE": 10_000}),
    RawRequest("source over 100 characters", "POST", UPLOAD, 400, "invalid",
               lambda: multipart(("source", None, b"s" * 101), ("file", "a.png", im.png(seed=43))), MULTIPART),
    RawRequest("external_id over 200 characters", "POST", UPLOAD, 400, "invalid",
               lambda: multipart(("external_id", None, b"e" * 201), ("file", "a.png", im.png(seed=44))), MULTIPART),
    RawRequest("NUL byte in source", "POST", UPLOAD, 400, "invalid",
               lambda: multipart(("source", None, b"line\x003"), ("file", "a.png", im.png(seed=45))), MULTIPART),
    _bad_wait("abc", seed=46), _bad_wait("-1", seed=47), _bad_wait("nan", seed=48), _bad_wait("inf", seed=49),
    _bad_wait("1e309", seed=50), _bad_wait("31", seed=51, note=" (over the limit)"),
    RawRequest("every file of several refused", "POST", UPLOAD, 400, "all_files_refused",
               lambda: multipart(("file", "a.png", b"<html>"), ("file", "b.png", b"")), MULTIPART),
    RawRequest("upload by a viewer", "POST", UPLOAD, 403, "permission_denied",
               lambda: multipart(("file", "a.png", im.png(seed=52))), MULTIPART, role="viewer"),
]


# --- other endpoints -------------------------------------------------------------------------

def _json(value) -> Callable[[], bytes]:
    return lambda: json.dumps(value).encode()


REVIEWS = "/api/v1/images/{image}/reviews/"
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000

OTHER_REQUESTS = [
    # Reviews
    RawRequest("review with an unknown class", "POST", REVIEWS, 400, "unknown_class",
               _json({"label": "rust", "expected_version": 0})),
    RawRequest("review with an SQL-looking class", "POST", REVIEWS, 400, "unknown_class",
               _json({"label": "crazing' OR '1'='1", "expected_version": 0})),
    RawRequest("review with a unicode class", "POST", REVIEWS, 400, "unknown_class",
               _json({"label": "鋼板の傷", "expected_version": 0})),
    RawRequest("review with an empty label", "POST", REVIEWS, 400, "invalid", _json({"label": ""})),
    RawRequest("review with a NUL in the label", "POST", REVIEWS, 400, "invalid", _json({"label": "craz\x00ing"})),
    RawRequest("review with a 10000-character label", "POST", REVIEWS, 400, "invalid", _json({"label": "x" * 10_000})),
    RawRequest("review with a list as label", "POST", REVIEWS, 400, "invalid", _json({"label": ["crazing"]})),
    RawRequest("review with an object as label", "POST", REVIEWS, 400, "invalid", _json({"label": {"$ne": None}})),
    RawRequest("review with a lone surrogate in the label", "POST", REVIEWS, 400, None,
               lambda: b'{"label": "\\ud800crazing"}'),
    RawRequest("review with expected_version -1", "POST", REVIEWS, 400, "invalid",
               _json({"label": "crazing", "expected_version": -1})),
    RawRequest("review with expected_version 'abc'", "POST", REVIEWS, 400, "invalid",
               _json({"label": "crazing", "expected_version": "abc"})),
    RawRequest("review with expected_version 1e400", "POST", REVIEWS, 400, None,
               lambda: b'{"label": "crazing", "expected_version": 1e400}'),
    RawRequest("review with expected_version 2**80", "POST", REVIEWS, 409, "conflict",
               _json({"label": "crazing", "expected_version": 2 ** 80})),
    RawRequest("review with NaN", "POST", REVIEWS, 400, "parse_error",
               lambda: b'{"label": "crazing", "expected_version": NaN}'),
    RawRequest("malformed JSON", "POST", REVIEWS, 400, "parse_error", lambda: b'{"label": "crazing"'),
    RawRequest("JSON that is not UTF-8", "POST", REVIEWS, 400, "parse_error", lambda: b'{"label": "\xff\xfe"}'),
    RawRequest("JSON array instead of an object", "POST", REVIEWS, 400, "invalid", _json(["crazing"])),
    RawRequest("JSON string instead of an object", "POST", REVIEWS, 400, "invalid", _json("crazing")),
    RawRequest("JSON nested 100000 deep", "POST", REVIEWS, 400, "parse_error", lambda: DEEP_JSON),
    RawRequest("JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE", "POST", REVIEWS, 413, "request_too_large",
               _json({"label": "crazing", "pad": "x" * 20_000}), settings={"DATA_UPLOAD_MAX_MEMORY_SIZE": 10_000}),
    RawRequest("XML body to reviews", "POST", REVIEWS, 415, "unsupported_media_type",
               lambda: b"<label>crazing</label>", "application/xml"),
    RawRequest("review of an image id past bigint", "POST", "/api/v1/images/99999999999999999999/reviews/", 404,
               "not_found", _json({"label": "crazing"})),
    RawRequest("review of image 0", "POST", "/api/v1/images/0/reviews/", 404, "not_found", _json({"label": "crazing"})),
    RawRequest("review by a viewer", "POST", REVIEWS, 403, "permission_denied", _json({"label": "crazing"}),
               role="viewer"),
    # Classes
    RawRequest("class with an empty name", "POST", "/api/v1/classes/", 400, None, _json({"name": ""})),
    RawRequest("class name with markup", "POST", "/api/v1/classes/", 400, "invalid_class_name",
               _json({"name": "<script>alert(1)</script>"})),
    RawRequest("class name with path traversal", "POST", "/api/v1/classes/", 400, "invalid_class_name",
               _json({"name": "../../etc"})),
    RawRequest("class name of 65 characters", "POST", "/api/v1/classes/", 400, "invalid", _json({"name": "c" * 65})),
    RawRequest("class name with a NUL", "POST", "/api/v1/classes/", 400, "invalid", _json({"name": "a\x00b"})),
    RawRequest("class name with a lone surrogate", "POST", "/api/v1/classes/", 400, None,
               lambda: b'{"name": "rust\\udfff"}'),
    RawRequest("class description with a lone surrogate", "POST", "/api/v1/classes/", 400, None,
               lambda: b'{"name": "rust", "description": "\\ud83d"}'),
    RawRequest("class that already exists", "POST", "/api/v1/classes/", 409, "already_exists",
               _json({"name": "Crazing "})),
    # Training runs and model versions
    RawRequest("training parameters not an object", "POST", "/api/v1/training-runs/", 400, "invalid",
               _json({"parameters": "fast"})),
    RawRequest("unknown training parameter", "POST", "/api/v1/training-runs/", 400, None,
               _json({"parameters": {"__class__": 1}})),
    RawRequest("negative epochs", "POST", "/api/v1/training-runs/", 400, None,
               _json({"parameters": {"head_epochs": -5}})),
    RawRequest("backbone name with path traversal", "POST", "/api/v1/training-runs/", 400, None,
               _json({"parameters": {"backbone": "../../etc/passwd"}})),
    RawRequest("absurd input size", "POST", "/api/v1/training-runs/", 400, None,
               _json({"parameters": {"input_size": 10 ** 9}})),
    RawRequest("time budget as text", "POST", "/api/v1/training-runs/", 400, None,
               _json({"parameters": {"time_budget_s": "forever"}})),
    RawRequest("training parameter 1e400 (infinite)", "POST", "/api/v1/training-runs/", 400, "parse_error",
               lambda: b'{"parameters": {"head_epochs": 1e400}}'),
    RawRequest("training parameter with 5000 digits", "POST", "/api/v1/training-runs/", 400, "parse_error",
               lambda: b'{"parameters": {"seed": ' + b"9" * 5000 + b"}}"),
    RawRequest("training runs as multipart", "POST", "/api/v1/training-runs/", 415, "unsupported_media_type",
               lambda: multipart(("parameters", None, b"{}")), MULTIPART),
    RawRequest("promote with a non-boolean option", "POST", "/api/v1/model-versions/{version}/promote/", 400, "invalid",
               _json({"repredict_review_queue": "maybe"})),
    RawRequest("promote with malformed JSON", "POST", "/api/v1/model-versions/{version}/promote/", 400, "parse_error",
               lambda: b"{repredict_review_queue: true}"),
    RawRequest("promote a version id past bigint", "POST", "/api/v1/model-versions/99999999999999999999/promote/", 404,
               "not_found", _json({})),
    RawRequest("promote by qa", "POST", "/api/v1/model-versions/{version}/promote/", 403, "permission_denied",
               _json({}), role="qa"),
    RawRequest("cancel a training run id past bigint", "POST", "/api/v1/training-runs/99999999999999999999/cancel/",
               404, "not_found"),
    # Reads: pagination
    RawRequest("page=0", "GET", "/api/v1/images/?page=0", 400, "invalid"),
    RawRequest("page=-1", "GET", "/api/v1/images/?page=-1", 400, "invalid"),
    RawRequest("page=abc", "GET", "/api/v1/images/?page=abc", 400, "invalid"),
    RawRequest("page=1.5", "GET", "/api/v1/images/?page=1.5", 400, "invalid"),
    RawRequest("page past the end", "GET", "/api/v1/images/?page=99999999999999999999", 404, "not_found"),
    RawRequest("page with 5000 digits", "GET", "/api/v1/images/?page=" + "9" * 5000, 400, "invalid"),
    RawRequest("page_size=0", "GET", "/api/v1/images/?page_size=0", 400, "invalid"),
    RawRequest("page_size=-5", "GET", "/api/v1/images/?page_size=-5", 400, "invalid"),
    RawRequest("page_size=1000000", "GET", "/api/v1/images/?page_size=1000000", 400, "invalid"),
    RawRequest("page_size=abc on model versions", "GET", "/api/v1/model-versions/?page_size=abc", 400, "invalid"),
    RawRequest("page=-1 on training runs", "GET", "/api/v1/training-runs/?page=-1", 400, "invalid"),
    RawRequest("page=abc on reviews", "GET", REVIEWS + "?page=abc", 400, "invalid"),
    # Reads: filters
    RawRequest("status filter with SQL", "GET", "/api/v1/images/?status=pending'%20OR%20'1'='1", 400, "invalid"),
    RawRequest("label filter with SQL", "GET", "/api/v1/images/?label=x'%3B%20DROP%20TABLE%20inspections_inspectionimage%3B--",
               400, "invalid"),
    RawRequest("label filter in unicode", "GET", "/api/v1/images/?label=%E9%8B%BC%E6%9D%BF", 400, "invalid"),
    RawRequest("model_version filter with SQL", "GET", "/api/v1/images/?model_version=1%20OR%201=1", 400, "invalid"),
    RawRequest("model_version filter past bigint", "GET", "/api/v1/images/?model_version=99999999999999999999", 400,
               "invalid"),
    RawRequest("needs_review=maybe", "GET", "/api/v1/images/?needs_review=maybe", 400, "invalid"),
    RawRequest("created_after not a date", "GET", "/api/v1/images/?created_after=yesterday", 400, "invalid"),
    RawRequest("created_after in year 99999", "GET", "/api/v1/images/?created_after=99999-01-01T00:00:00Z", 400,
               "invalid"),
    RawRequest("created_after with SQL", "GET", "/api/v1/images/?created_after=2024-01-01'%20OR%201=1--", 400,
               "invalid"),
    RawRequest("split filter given twice", "GET", "/api/v1/images/?split=train&split=test", 400, "invalid"),
    RawRequest("NUL in the source filter", "GET", "/api/v1/images/?source=a%00b", 400, "invalid"),
    RawRequest("external_id filter of 10000 characters", "GET", "/api/v1/images/?external_id=" + "e" * 10_000, 400,
               "invalid"),
    # Reads: ids, methods, authentication, negotiation
    RawRequest("image id past bigint", "GET", "/api/v1/images/99999999999999999999/", 404, "not_found"),
    RawRequest("image file id past bigint", "GET", "/api/v1/images/99999999999999999999/file/", 404, "not_found"),
    RawRequest("image id that is not a number", "GET", "/api/v1/images/abc/", 404, "not_found"),
    RawRequest("image id with traversal", "GET", "/api/v1/images/..%2F..%2Fetc%2Fpasswd/", 404, "not_found"),
    RawRequest("model version id past bigint", "GET", "/api/v1/model-versions/99999999999999999999/", 404, "not_found"),
    RawRequest("training run id past bigint", "GET", "/api/v1/training-runs/99999999999999999999/", 404, "not_found"),
    RawRequest("?format=xml (no such renderer)", "GET", "/api/v1/images/?format=xml", 404, "not_found"),
    RawRequest("?format=api on a detail", "GET", "/api/v1/model-versions/{version}/?format=api", 404, "not_found"),
    RawRequest("POST to an unknown API path", "POST", "/api/v1/images/1/delete-everything/", 404, "not_found",
               _json({})),
    RawRequest("POST to an unknown API path without credentials", "POST", "/api/v1/admin/", 404, "not_found",
               _json({}), role=""),
    RawRequest("DELETE on the image list", "DELETE", UPLOAD, 405, "method_not_allowed"),
    RawRequest("PUT on a model version", "PUT", "/api/v1/model-versions/{version}/", 405, "method_not_allowed",
               _json({"status": "active"})),
    RawRequest("Accept: text/html only", "GET", UPLOAD, 406, "not_acceptable", headers={"Accept": "text/html"}),
    RawRequest("no credentials", "GET", UPLOAD, 401, "not_authenticated", role=""),
    RawRequest("unknown token", "GET", UPLOAD, 401, "authentication_failed", role="",
               headers={"Authorization": "Token 0000000000000000000000000000000000000000"}),
    RawRequest("token header with spaces", "GET", UPLOAD, 401, "authentication_failed", role="",
               headers={"Authorization": "Token a b c"}),
    RawRequest("token with SQL", "GET", UPLOAD, 401, "authentication_failed", role="",
               headers={"Authorization": "Token ' OR '1'='1"}),
]


@pytest.fixture
def targets():
    """Rows the paths refer to: an image to review, a candidate version to promote."""
    return {"image": InspectionImageFactory().pk, "version": ModelVersionFactory().pk}


def _send(case: RawRequest, targets: dict):
    client = client_as(case.role) if case.role else APIClient()
    path = case.path.format(**targets)
    headers = dict(case.headers)
    return client.generic(case.method, path, case.body(), content_type=case.content_type, headers=headers)


@pytest.mark.parametrize("case", UPLOAD_REQUESTS + OTHER_REQUESTS, ids=lambda c: c.kind)
def test_hostile_request_is_a_4xx_that_changes_nothing(case, settings, targets, unchanged):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    response = _send(case, targets)
    assert_error(response, case.status, case.code)
    unchanged()


# --- filters that are merely odd strings: answered, with nothing matching ----------------------

@pytest.mark.parametrize("query", [
    "source=%27%20OR%201%3D1%20--",
    "source=%E9%8B%BC%E6%9D%BF%20%F0%9F%94%A5",
    "external_id=%22%3B%20DROP%20TABLE%20auth_user%3B%20--",
    "source=%25",
    "source=%5C",
])
def test_odd_free_text_filters_match_nothing_and_change_nothing(query, targets, unchanged):
    response = client_as("viewer").get(f"/api/v1/images/?{query}")
    assert response.status_code == 200, response.content[:300]
    assert response.json()["count"] == 0
    unchanged()


# --- oversize files never reach memory or disk in full ------------------------------------------

def test_an_oversize_file_is_refused_without_being_written_out(settings, monkeypatch, unchanged):
    from django.core.files.uploadhandler import TemporaryFileUploadHandler

    settings.STEELQC_MAX_UPLOAD_BYTES = 64 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload would go to a temporary file
    written = []
    original = TemporaryFileUploadHandler.receive_data_chunk

    def counting(self, raw_data, start):
        written.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(TemporaryFileUploadHandler, "receive_data_chunk", counting)
    response = post_files(client_as("integrator"), ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 3_000_000))
    error = assert_error(response, 413, "file_too_large")
    assert "3000008 bytes" in error["message"]
    assert 0 < sum(written) <= 64 * 1024
    unchanged()


def test_an_oversize_file_among_good_ones_is_refused_alone(settings, media_root):
    settings.STEELQC_MAX_UPLOAD_BYTES = 64 * 1024
    response = post_files(client_as("qa"), ("good.png", im.png(seed=60)), ("big.png", b"\0" * 200_000),
                          ("also-good.png", im.png(seed=61)))
    assert response.status_code == 201, response.content[:300]
    results = response.json()["results"]
    assert [("image" in r, r.get("error", {}).get("code")) for r in results] == [
        (True, None), (False, "file_too_large"), (True, None)]
