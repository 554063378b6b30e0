"""Request ids: response header, every log record of the request, JSON log lines, Celery tasks."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from celery.signals import after_task_publish
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from steelqc.observability import REQUEST_ID_HEADER, JsonFormatter, RequestIdFilter, request_id_get, request_id_set
from tests.conftest import wait_for
from tests.factories import UserFactory, image_bytes

ROOT = Path(__file__).resolve().parent.parent.parent
GENERATED = re.compile(r"[0-9a-f]{32}")


class _Capture(logging.Handler):
    """Keeps records with the request id they had when they were emitted."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured_logs():
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


@pytest.fixture(autouse=True)
def _no_request_id_leaks():
    request_id_set(None)
    yield
    request_id_set(None)


@pytest.fixture
def published_headers():
    """Headers of every task message actually sent while the test runs."""
    sent: list[dict] = []

    def record(headers=None, **kwargs):
        sent.append(dict(headers or {}))

    after_task_publish.connect(record, weak=False)
    yield sent
    after_task_publish.disconnect(record)


def test_every_response_gets_a_fresh_request_id(client):
    first = client.get("/api/v1/no-such-endpoint/")
    second = client.get("/api/v1/no-such-endpoint/")
    assert GENERATED.fullmatch(first[REQUEST_ID_HEADER])
    assert GENERATED.fullmatch(second[REQUEST_ID_HEADER])
    assert first[REQUEST_ID_HEADER] != second[REQUEST_ID_HEADER]


def test_a_sane_incoming_request_id_is_kept(client):
    response = client.get("/api/v1/no-such-endpoint/", headers={REQUEST_ID_HEADER: "plc-7:coil-4711.a_b-c"})
    assert response[REQUEST_ID_HEADER] == "plc-7:coil-4711.a_b-c"


@pytest.mark.parametrize("incoming", [
    "x" * 129,
    "two words",
    "id\twith\ttabs",
    "<script>alert(1)</script>",
    "ünïcödé",
    "-starts-with-a-dash",
    "",
])
def test_an_odd_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/api/v1/no-such-endpoint/", headers={REQUEST_ID_HEADER: incoming})
    assert GENERATED.fullmatch(response[REQUEST_ID_HEADER]), response[REQUEST_ID_HEADER]


def test_every_log_record_of_the_request_carries_its_id(client, captured_logs):
    response = client.get("/api/v1/no-such-endpoint/", headers={REQUEST_ID_HEADER: "req-logs-1"})
    assert response.status_code == 404
    # django.request logs the 404 after the middleware has returned: the id must still be there.
    not_found = [r for r in captured_logs if r.name == "django.request" and "Not Found" in r.getMessage()]
    assert len(not_found) == 1
    assert {record.request_id for record in captured_logs} == {"req-logs-1"}


def test_log_records_outside_a_request_have_no_id(client, captured_logs):
    client.get("/api/v1/no-such-endpoint/", headers={REQUEST_ID_HEADER: "req-before"})
    logging.getLogger("steelqc.tests").warning("after the request")
    assert captured_logs[-1].getMessage() == "after the request"
    assert captured_logs[-1].request_id == "-"
    assert request_id_get() is None


def test_json_formatter_writes_the_fields_a_collector_needs():
    request_id_set("req-json-1")
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("steelqc.tests").makeRecord(
            "steelqc.tests", logging.ERROR, __file__, 1, "failed for %s", ("coil-1",), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR"
    assert line["logger"] == "steelqc.tests"
    assert line["message"] == "failed for coil-1"
    assert line["request_id"] == "req-json-1"
    assert "ValueError: broken" in line["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def _run_python(*args: str, **env: str) -> subprocess.CompletedProcess:
    """A fresh interpreter in the project folder, with the test settings and ``env``."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.test", **env})


def _run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Runs ``code`` after django.setup() in a fresh interpreter; the test fails unless it exits 0."""
    result = _run_python("-c", "import django; django.setup()\n" + code, **env)
    assert result.returncode == 0, result.stderr
    return result


def test_json_log_format_writes_one_json_object_per_line_with_the_request_id():
    result = _run_django(
        "import logging\n"
        "from django.test import Client\n"
        "response = Client().get('/api/v1/no-such-endpoint/', HTTP_HOST='localhost', HTTP_X_REQUEST_ID='req-json-2')\n"
        "print(response.status_code, response['X-Request-ID'])\n"
        "logging.getLogger('steelqc.tests').warning('after the request')\n",
        STEELQC_LOG_FORMAT="json",
    )
    assert result.stdout.split() == ["404", "req-json-2"]
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    not_found = [line for line in lines if line["logger"] == "django.request"]
    assert len(not_found) == 1
    assert not_found[0]["request_id"] == "req-json-2"
    assert not_found[0]["level"] == "WARNING"
    assert "/api/v1/no-such-endpoint/" in not_found[0]["message"]
    after = [line for line in lines if line["message"] == "after the request"]
    assert len(after) == 1 and after[0]["request_id"] is None


def test_plain_log_format_puts_the_request_id_in_brackets():
    result = _run_django(
        "from django.test import Client\n"
        "Client().get('/api/v1/no-such-endpoint/', HTTP_HOST='localhost', HTTP_X_REQUEST_ID='req-plain-1')\n",
        STEELQC_LOG_FORMAT="plain",
    )
    assert re.search(r"WARNING django\.request \[req-plain-1\] Not Found: /api/v1/no-such-endpoint/", result.stderr)


def test_an_unknown_log_format_is_refused_at_start_up():
    result = _run_python("manage.py", "check", STEELQC_LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "STEELQC_LOG_FORMAT must be 'plain' or 'json'" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_task_queued_during_a_request_carries_the_request_id(published_headers):
    # transaction=True: the upload's on-commit hook queues inference inside the request, as in production.
    client = APIClient()
    user = UserFactory(roles=["integrator"])
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='test').secret}")
    upload = SimpleUploadedFile("strip.png", image_bytes(seed=4242), content_type="image/png")
    response = client.post("/api/v1/images/", {"file": upload}, format="multipart",
                           headers={REQUEST_ID_HEADER: "req-task-1"})
    assert response.status_code == 201, response.content
    inference = [h for h in published_headers if h.get("task") == "worker.tasks.inference.predict_images"]
    assert len(inference) == 1
    assert inference[0]["request_id"] == "req-task-1"


def test_a_task_queued_outside_a_request_carries_no_request_id(published_headers):
    from inspections.queueing import inference_enqueue

    assert inference_enqueue(image_ids=[987654321])
    assert len(published_headers) == 1
    assert "request_id" not in published_headers[0]


@pytest.mark.django_db
def test_a_task_sees_the_id_it_was_queued_with_and_the_caller_keeps_its_own():
    from celery.signals import task_prerun

    from worker.tasks.health import ping

    seen = []

    def record(**kwargs):
        seen.append(request_id_get())

    request_id_set("req-outer")
    task_prerun.connect(record, weak=False)  # after the project's receiver, so it sees the task's id
    try:
        ping.apply(headers={"request_id": "req-inner"})
    finally:
        task_prerun.disconnect(record)
    assert seen == ["req-inner"]
    assert request_id_get() == "req-outer"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_a_task_with_the_id_of_the_request_that_queued_it(celery_worker):
    from worker.tasks.health import ping

    marker = celery_worker.log_path.stat().st_size
    request_id_set("req-worker-1")
    result = ping.apply_async(queue="inference")
    request_id_set(None)
    assert result.get(timeout=60)["database"].startswith("ok")

    def succeeded_lines():
        # The worker stores the result before it writes the "succeeded" line: wait for the line.
        log = celery_worker.log_path.read_text(errors="replace")[marker:]
        return [line for line in log.splitlines() if result.id in line and "succeeded" in line]

    try:
        succeeded = wait_for(succeeded_lines, timeout=30)
    except AssertionError:
        raise AssertionError(celery_worker.log_tail()) from None
    assert "[req-worker-1]" in succeeded[0]


def test_a_request_warning_is_logged_once_with_debug_on():
    """`make run` has DEBUG on: Django's own console handler must not repeat each warning in plain text."""
    result = _run_django(
        "import logging\n"
        "logging.getLogger('django.request').warning('Not Found: /nowhere-%s', 'x')\n",
        DEBUG="true",
    )
    lines = [line for line in result.stderr.splitlines() if "Not Found: /nowhere-x" in line]
    assert len(lines) == 1, lines
    assert "WARNING django.request" in lines[0]
