"""docs/api.md's examples work as written, in order: each curl request of its ``bash`` blocks is sent
to the test server with the token of the role the document made it with and is answered with
success; an id is never written into an example but taken from the answer of an earlier one
(``NAME=$(curl ... | python3 -c '...')``, run with the documented Python on the real answer)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.models import DefectClass, InspectionImage
from inspections.registry.services.model_versions import model_version_promote
from tests.conftest import tiny_dataset
from tests.factories import ModelVersionFactory, UserFactory, image_bytes

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
TOKEN_LINE = re.compile(r"^(\w+)=\$\(.*create_api_token \S+ --create --role (\w+)\)", re.M)
CAPTURE_LINE = re.compile(r"^(\w+)=\$\((curl .*)\)\s*(?:#[^)]*)?$")
# Examples the worker-less test server cannot answer with success; each is covered by its own tests.
NOT_RUN = ("/classify/", "/similar/")
# Where the session's ids live in a URL: never written as a number in the document.
HARD_CODED_ID = re.compile(r"/api/v1/(?:[\w-]+/)*\d+(?:/|$)")

pytestmark = pytest.mark.django_db


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def _lines(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _curl(command: str) -> dict:
    args = shlex.split(command, comments=True)
    assert args[0] == "curl", command
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
        elif word in ("-o", "--max-time"):
            next(words)
        elif word in ("-s", "-sS", "-S", "-f", "-fsS"):
            continue
        else:
            assert word.startswith("http"), f"the test's curl does not know {word!r} in: {command}"
            request["url"] = word
    request["method"] = request["method"] or ("POST" if request["files"] or request["data"] else "GET")
    return request


def _substitute(text: str, variables: dict[str, str]) -> str:
    def value(match):
        name = match[1] or match[2]
        assert name in variables, f"${name} is used before an example sets it"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def _steps(text: str) -> list[tuple[str | None, str, str | None]]:
    """(variable to capture or None, curl command, Python that reads the answer or None), in order."""
    steps = []
    for block in _blocks(text, "bash"):
        for line in _lines(block):
            capture = CAPTURE_LINE.match(line)
            if capture:
                words = shlex.split(capture[2])
                assert "|" in words and words[words.index("|") + 1:][:2] == ["python3", "-c"], line
                reader = words[words.index("|") + 3]
                curl = shlex.join(words[:words.index("|")])
                steps.append((capture[1], curl, reader))
            elif line.startswith("curl "):
                steps.append((None, line, None))
            else:
                assert "curl" not in line, f"a curl line the test cannot run: {line}"
    return steps


def _upload(name: str) -> SimpleUploadedFile:
    fmt = {"png": "PNG", "bmp": "BMP"}[name.rsplit(".", 1)[1]]
    return SimpleUploadedFile(name, image_bytes(seed=sum(map(ord, name)), fmt=fmt))


def _uploaded_ids(body: dict) -> set[int]:
    if "results" in body:
        return {entry["image"]["id"] for entry in body["results"] if entry.get("created")}
    return {body["id"]}


def test_no_example_hard_codes_an_id():
    text = API_DOC.read_text()
    curl_lines = [line for language in ("bash", "sh") for block in _blocks(text, language)
                  for line in _lines(block) if "curl " in line]
    assert len(curl_lines) >= 30
    hard_coded = [line for line in curl_lines if HARD_CODED_ID.search(line)]
    assert hard_coded == []


def test_examples_not_run_here_are_only_those_a_worker_must_answer():
    text = API_DOC.read_text()
    not_run = [line for block in _blocks(text, "sh") for line in _lines(block) if "curl " in line]
    assert not_run, "docs/api.md no longer has examples outside the bash blocks: drop NOT_RUN"
    for line in not_run:
        assert any(path in line for path in NOT_RUN), f"runnable example outside a bash block: {line}"


def test_each_documented_request_succeeds_in_order_with_the_documented_role(monkeypatch, no_queue, tmp_path):
    monkeypatch.setattr("inspections.review.prediction_events.prediction_wait", lambda **kwargs: set())  # no worker
    text = API_DOC.read_text()
    roles = dict(TOKEN_LINE.findall(text))
    assert set(roles.values()) >= {"integrator", "qa", "ml_admin"}, "docs/api.md makes no token per role"
    variables = {name: api_token_create(user=UserFactory(roles=[role]), name="test").secret
                 for name, role in roles.items()}

    # An installation with labelled images (so a run can start), an active version and a newer one
    # with a file to download: what docs/api.md's reader has after `make run` and a training run.
    # 32 a class: each ready to train (20 training and 5 test images as the split shares them out).
    tiny_dataset(tmp_path / "data", per_class=32)
    dataset_import_folder(root=tmp_path / "data")
    for name in ("scratches", "inclusion", "no_defect"):
        DefectClass.objects.get_or_create(name=name)
    earlier = model_version_promote(version=ModelVersionFactory())
    newest = ModelVersionFactory()
    default_storage.save(f"{newest.artifact_path}/classes.json", ContentFile(json.dumps(newest.classes).encode()))
    images_before = set(InspectionImage.objects.values_list("pk", flat=True))

    uploaded: set[int] = set()
    reviewed, undone = [], []
    steps = _steps(text)
    assert len(steps) >= 30
    assert sum(1 for variable, _, _ in steps if variable) >= 8
    for variable, command, reader in steps:
        request = _curl(command)
        token = re.fullmatch(r"Token \$(\w+)", request["headers"].pop("Authorization")).group(1)
        assert roles.get(token), f"${token} is not made by a documented create_api_token line"
        url = _substitute(request["url"], variables)
        data = _substitute(request["data"], variables) if request["data"] else None
        path, query = urlsplit(url).path, urlsplit(url).query
        if any(part in path for part in NOT_RUN):
            pytest.fail(f"{path} is run here but the test server cannot answer it: use a sh block")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {variables[token]}")
        target = f"{path}?{query}" if query else path
        if request["files"]:
            payload = {**request["fields"], "file": [_upload(name) for name in request["files"]]}
            response = client.post(target, payload, format="multipart")
        elif data:
            response = client.generic(request["method"], target, data, content_type="application/json")
        else:
            response = client.generic(request["method"], target)
        assert response.status_code < 300, (roles[token], request["method"], url, response.status_code,
                                            b"".join(response) if response.streaming else response.content[:300])
        if request["files"] and path.endswith("/images/"):
            uploaded |= _uploaded_ids(response.json())
        if variable:
            answer = subprocess.run([sys.executable, "-c", reader], input=response.content, capture_output=True,
                                    timeout=30, check=True)
            variables[variable] = answer.stdout.decode().strip()
            assert variables[variable], f"{variable} read nothing from the answer of {url}"
        review = re.fullmatch(r"/api/v1/images/(\d+)/reviews/", path)
        if review and request["method"] == "POST":
            reviewed.append((int(review[1]), json.loads(data)["label"]))
        if re.fullmatch(r"/api/v1/reviews/\d+/undo/", path) and request["method"] == "POST":
            # The image's latest decision taken back: it holds the label before it again.
            body = response.json()
            image_id = body["image"]["id"]
            reviewed.remove(next(entry for entry in reversed(reviewed) if entry[0] == image_id))
            undone.append((image_id, body["review"]["label"]))

    assert uploaded and not uploaded & images_before
    assert reviewed, "docs/api.md has no review example"
    assert undone, "docs/api.md has no undo example"
    for image_id, label in undone:
        assert label == dict(reviewed).get(image_id), "the undo restored the label of the decision before"
    for image_id, label in reviewed:
        assert image_id in uploaded, "the review example acts on an image an earlier example uploaded"
        assert InspectionImage.objects.get(pk=image_id).label.name == label
    earlier.refresh_from_db()
    assert earlier.status == "active", "the documented rollback re-activated the earlier version"
