"""Both upload pages offer, in their file chooser and their text, exactly the formats the upload
validation accepts, and every one of them really goes through."""

import io
import mimetypes
import re

import pytest
from PIL import Image

from inspections.catalog.services.image_validation import ACCEPTED_FORMATS, image_facts_from_bytes

pytestmark = pytest.mark.django_db


def _accept(html: str) -> set[str]:
    return set(re.search(r'<input id="[a-z]+-files"[^>]*\baccept="([^"]*)"', html).group(1).split(","))


@pytest.mark.parametrize("url, extra", [("/upload/", set()), ("/upload/bulk/", {".zip", "application/zip"})])
def test_the_file_chooser_offers_the_accepted_formats_and_nothing_else(client, role_user, url, extra):
    client.force_login(role_user("qa"))
    html = client.get(url).content.decode()
    offered = _accept(html) - extra
    assert offered == ({ext for fmt in ACCEPTED_FORMATS.values() for ext in fmt.file_extensions}
                       | {fmt.mime_type for fmt in ACCEPTED_FORMATS.values()})
    assert extra <= _accept(html)
    assert not offered & {".gif", ".webp", "image/gif", "image/webp"}
    assert all(name in html for name in ACCEPTED_FORMATS)


@pytest.mark.parametrize("pillow_format", sorted(ACCEPTED_FORMATS))
def test_every_offered_format_is_accepted_by_the_upload_check(pillow_format):
    accepted = ACCEPTED_FORMATS[pillow_format]
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format=pillow_format)
    assert image_facts_from_bytes(buffer.getvalue()).extension == accepted.stored_extension
    for extension in accepted.file_extensions:
        assert mimetypes.guess_type(f"strip{extension}")[0] == accepted.mime_type
