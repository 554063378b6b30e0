"""One home per upload rule: the source / external-id lengths are the model's columns, and every
way an image arrives (images/, classify/, the zip upload page, a dataset import) goes through the
one validator in ``catalog/services/image_validation.py``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inspections.catalog.api.filters import ImageFilters
from inspections.catalog.api.serializers import UploadInput
from inspections.catalog.limits import EXTERNAL_ID_MAX_LENGTH, SOURCE_MAX_LENGTH
from inspections.catalog.services import image_validation
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.errors import ApplicationError
from inspections.line.api import classify as classify_api
from inspections.line.api.classify import LineStatsQuery
from inspections.models import InspectionImage
from inspections.review.pages.forms import QueueFilterForm
from tests.factories import UserFactory, image_bytes
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

SOURCE_COLUMN = InspectionImage._meta.get_field("source").max_length
EXTERNAL_ID_COLUMN = InspectionImage._meta.get_field("external_id").max_length
INSPECTIONS = Path(__file__).resolve().parents[2] / "inspections"


def _api_upload(source: str, content: bytes | None = None):
    upload = SimpleUploadedFile("a.png", content or image_bytes(seed=1))
    return client_for("integrator").post("/api/v1/images/", {"file": [upload], "source": source}, format="multipart")


def _classify(source: str, content: bytes | None = None):
    upload = SimpleUploadedFile("a.png", content or image_bytes(seed=1))
    return client_for("integrator").post("/api/v1/classify/", {"file": [upload], "source": source}, format="multipart")


def _zip_upload(client, source: str, content: bytes | None = None) -> dict:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.png", content or image_bytes(seed=1))
    buffer.seek(0)
    buffer.name = "batch.zip"
    response = client.post("/upload/zip/", {"file": buffer, "source": source})
    assert response.status_code == 200, response.content[:500]
    [member] = response.json()["results"]
    return member


@pytest.fixture
def page_client(client):
    client.force_login(UserFactory(roles=["qa"]))
    return client


@pytest.fixture
def classify_answers(monkeypatch):
    """classify/ without Redis or a worker: every accepted file is predicted and not kept."""
    calls = []

    def answer(*, files, source, external_id, uploaded_by, timeout_s, idempotency_key=""):
        calls.append({"source": source, "files": [f.filename for f in files]})
        return [{"filename": f.filename, "prediction": {}, "kept": False, "image_id": None} for f in files]

    monkeypatch.setattr(classify_api, "classify_request", answer)
    return calls


# --- lengths ---------------------------------------------------------------------------------

def test_every_source_and_external_id_limit_is_the_model_column():
    assert (SOURCE_MAX_LENGTH, EXTERNAL_ID_MAX_LENGTH) == (SOURCE_COLUMN, EXTERNAL_ID_COLUMN)
    for fields in (UploadInput().fields, ImageFilters().fields):
        assert (fields["source"].max_length, fields["external_id"].max_length) == (SOURCE_COLUMN, EXTERNAL_ID_COLUMN)
    assert LineStatsQuery().fields["source"].max_length == SOURCE_COLUMN
    assert QueueFilterForm().fields["source"].max_length == SOURCE_COLUMN


def test_the_upload_page_offers_the_column_length(page_client):
    assert f'name="source" type="text" maxlength="{SOURCE_COLUMN}"' in page_client.get("/upload/").content.decode()


def test_a_source_as_long_as_the_column_is_accepted_everywhere(page_client, classify_answers, no_queue):
    source = "s" * SOURCE_COLUMN
    assert _api_upload(source).status_code == 201
    assert InspectionImage.objects.get().source == source
    assert _classify(source, image_bytes(seed=2)).status_code == 200
    assert classify_answers == [{"source": source, "files": ["a.png"]}]
    assert _zip_upload(page_client, source, image_bytes(seed=3))["status"] == "created"
    assert InspectionImage.objects.filter(source=source).count() == 2


def test_a_source_one_longer_than_the_column_is_refused_everywhere(page_client, classify_answers, no_queue):
    source = "s" * (SOURCE_COLUMN + 1)
    assert "source" in assert_error(_api_upload(source), 400, "invalid")["details"]
    assert "source" in assert_error(_classify(source), 400, "invalid")["details"]
    member = _zip_upload(page_client, source)
    assert member["status"] == "refused" and f"source is limited to {SOURCE_COLUMN}" in member["message"]
    with pytest.raises(ApplicationError) as refused:
        image_validation.upload_fields_checked(source=source, external_id="")
    assert refused.value.code == "field_too_long"
    assert not InspectionImage.objects.exists() and not classify_answers and not no_queue


# --- the one validator -----------------------------------------------------------------------

@pytest.fixture
def refusing_validator(monkeypatch):
    """The validator replaced by one that refuses everything and notes what it saw."""
    seen: list[int] = []

    def refuse(data: bytes):
        seen.append(len(data))
        raise ApplicationError("Refused by the one validator.", code="refused_by_validator")

    monkeypatch.setattr(image_validation, "image_facts_from_bytes", refuse)
    return seen


def test_every_upload_path_uses_the_one_validator(page_client, refusing_validator, classify_answers, no_queue,
                                                  tmp_path):
    assert_error(_api_upload("line-1"), 400, "refused_by_validator")
    assert_error(_classify("line-1"), 400, "refused_by_validator")
    assert _zip_upload(page_client, "line-1")["message"] == "Refused by the one validator."
    (tmp_path / "crazing").mkdir()
    (tmp_path / "crazing" / "a.png").write_bytes(image_bytes(seed=1))
    assert dataset_import_folder(root=tmp_path).refused == [("crazing/a.png", "Refused by the one validator.")]
    assert len(refusing_validator) == 4
    assert not InspectionImage.objects.exists() and not classify_answers and not no_queue


def test_every_upload_path_takes_the_size_limit_from_the_validator(page_client, monkeypatch, classify_answers,
                                                                   no_queue):
    content = image_bytes(seed=1, size=(64, 64))
    monkeypatch.setattr(image_validation, "upload_size_limit", lambda: len(content) - 1)
    assert_error(_api_upload("line-1", content), 413, "file_too_large")
    assert_error(_classify("line-1", content), 413, "file_too_large")
    member = _zip_upload(page_client, "line-1", content)
    assert member["status"] == "refused" and f"{len(content) - 1}-byte limit" in member["message"]
    assert page_client.get("/upload/bulk/").context["max_file_bytes"] == len(content) - 1
    assert not InspectionImage.objects.exists() and not classify_answers and not no_queue


def test_the_upload_size_setting_is_read_only_by_the_validator():
    readers = {str(path.relative_to(INSPECTIONS)) for path in INSPECTIONS.rglob("*.py")
               if "STEELQC_MAX_UPLOAD_BYTES" in path.read_text()}
    # The request parser, which stops reading an oversize file part mid-stream, asks the validator too.
    assert readers == {"catalog/services/image_validation.py"}
