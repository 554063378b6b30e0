"""The README's API examples work as written: each documented curl request is sent to the test
server with a token of the role the README made it with, and is answered with success."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import DefectClass, InspectionImage, TrainingRun
from inspections.registry.services.model_versions import model_version_promote
from tests.conftest import tiny_dataset
from tests.factories import ModelVersionFactory, UserFactory, image_bytes

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[1] / "README.md"
TOKEN_LINE = re.compile(r"^(\w+)=\$\(.*create_api_token \S+ --create --role (\w+)\)", re.M)


def _commands(text: str) -> list[str]:
    """Shell commands of the README's bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _curl(command: str) -> dict:
    args = shlex.split(command, comments=True)
    request = {"method": None, "headers": {}, "files": [], "fields": {}, "data": None, "url": None}
    words = iter(args[1:])
    for word in words:
        if word == "-H":
            name, value = next(words).split(":", 1)
            request["headers"][name.strip()] = value.strip()
        elif word == "-F":
            name, value = next(words).split("=", 1)
            if value.startswith("@"):
                request["files"].append(value[1:])
            else:
                request["fields"][name] = value
        elif word == "-d":
            request["data"] = next(words)
        elif word == "-X":
            request["method"] = next(words)
        elif word == "-o":
            next(words)
        else:
            request["url"] = word
    request["method"] = request["method"] or ("POST" if request["files"] or request["data"] else "GET")
    return request


def _upload(name: str) -> SimpleUploadedFile:
    fmt = {"png": "PNG", "bmp": "BMP"}[name.rsplit(".", 1)[1]]
    return SimpleUploadedFile(name, image_bytes(seed=sum(map(ord, name)), fmt=fmt))


def test_each_documented_request_succeeds_with_the_documented_role(monkeypatch, no_queue, tmp_path):
    monkeypatch.setattr("inspections.review.prediction_events.prediction_wait", lambda **kwargs: None)  # no worker here
    text = README.read_text()
    roles = dict(TOKEN_LINE.findall(text))
    assert roles, "the README makes no token per role"
    tokens = {}
    for variable, role in roles.items():
        tokens[variable] = api_token_create(user=UserFactory(roles=[role]), name="test").secret

    tiny_dataset(tmp_path / "data", per_class=10)  # labelled images, so a run can start
    dataset_import_folder(root=tmp_path / "data")
    DefectClass.objects.get_or_create(name="scratches")
    image = InspectionImage.objects.filter(label__isnull=True).first() or InspectionImage.objects.first()
    earlier = model_version_promote(version=ModelVersionFactory())
    documented_version = ModelVersionFactory()
    ids = {"images": lambda: image.pk, "model-versions": lambda: documented_version.pk,
           "training-runs": lambda: TrainingRun.objects.latest("id").pk}

    requests = [_curl(c) for c in _commands(text) if c.startswith("curl ") and "/api/v1/" in c]
    assert len(requests) >= 9
    for request in requests:
        variable = re.fullmatch(r"Token \$(\w+)", request["headers"].pop("Authorization")).group(1)
        assert variable in tokens, f"{variable} is not made by a documented create_api_token line"
        path = urlsplit(request["url"]).path
        query = urlsplit(request["url"]).query
        path = re.sub(r"/(images|model-versions|training-runs)/\d+/", lambda m: f"/{m[1]}/{ids[m[1]]()}/", path)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[variable]}")
        url = f"{path}?{query}" if query else path
        if request["files"]:
            payload = {**request["fields"], "file": [_upload(name) for name in request["files"]]}
            response = client.post(url, payload, format="multipart")
        elif request["data"]:
            response = client.generic(request["method"], url, request["data"], content_type="application/json")
        else:
            response = client.generic(request["method"], url)
        assert response.status_code < 300, (roles[variable], request["method"], request["url"], response.status_code,
                                            response.content[:300])
        if "/reviews/" in path:
            image.refresh_from_db()
            assert image.label.name == json.loads(request["data"])["label"]
    earlier.refresh_from_db()
    assert earlier.status == "active", "the documented rollback re-activated the earlier version"
