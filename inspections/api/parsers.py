"""Request body parsing with limits.

DRF's JSON and form parsers read the request stream themselves, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applied to them: a client could make the server hold a
body of any size in memory. JSON nested deeper than Python's recursion limit crashed the
parser (a 500), and a number like ``1e400`` became ``inf``, which no field and no database
column can hold. Uploaded files were written to disk in full before the view could see their
size. The classes here close those gaps; every refusal reaches the API's one error shape.
"""

from __future__ import annotations

import io
import json
import math

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from inspections.catalog.services.image_validation import upload_size_limit


def _read_bounded(stream) -> bytes:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise RequestDataTooBig("The request body exceeded DATA_UPLOAD_MAX_MEMORY_SIZE.")
    return data


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


class BoundedJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = _read_bounded(stream)
        try:
            return json.loads(raw.decode(encoding), parse_float=_finite_float,
                              parse_constant=strict_constant if self.strict else None)
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            raise ParseError(f"JSON parse error - {str(error)[:200]}") from None


class BoundedFormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return super().parse(io.BytesIO(_read_bounded(stream)), media_type, parser_context)


class _OversizeUpload(UploadedFile):
    """Stands in for a file that passed the size limit: its real size, none of its bytes."""

    def __init__(self, *, name: str, content_type: str, size: int):
        super().__init__(io.BytesIO(b""), name=name, content_type=content_type, size=size)


class UploadSizeLimitHandler(FileUploadHandler):
    """First in the chain: stops passing a file's bytes on once it is over
    the upload size limit (``upload_size_limit``; so nothing huge reaches memory or the temp folder), and
    hands the view a stand-in with the real size, which the view refuses per file (413)."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.seen = 0

    def receive_data_chunk(self, raw_data, start):
        self.seen += len(raw_data)
        return raw_data if self.seen <= upload_size_limit() else None

    def file_complete(self, file_size):
        if self.seen <= upload_size_limit():
            return None  # the next handlers kept the bytes and make the file
        return _OversizeUpload(name=self.file_name, content_type=self.content_type, size=self.seen)
