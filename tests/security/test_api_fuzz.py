"""Fuzzing every operation of the OpenAPI document through the WSGI application: schema-valid
(positive) and schema-violating (negative) requests from schemathesis, as an ml_admin, on ids
that exist and ids that do not. No answer may be a server error.

Bounded: FUZZ_EXAMPLES examples per operation, mode and id choice; a few hundred requests in all.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from inspections.access.services.api_tokens import api_token_create
from tests.factories import (
    DefectClassFactory,
    InspectionImageFactory,
    ModelVersionFactory,
    TrainingRunFactory,
    UserFactory,
)

FUZZ_EXAMPLES = 20
ID_PARAMETERS = ("image_id", "version_id", "run_id")

pytestmark = pytest.mark.django_db


@pytest.fixture
def fuzz_rows() -> dict[str, int]:
    """Rows for path ids to hit, so operations get past their 404s."""
    DefectClassFactory(name="crazing")
    return {
        "image_id": InspectionImageFactory().pk,
        "version_id": ModelVersionFactory().pk,
        "run_id": TrainingRunFactory().pk,
    }


class _WSGIHandlerKeepingTheTestConnection(WSGIHandler):
    """Django's WSGI handler, as gunicorn runs it, except that it does not close the database
    connection between requests (the test's transaction lives on it), as Django's test client."""

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = super().__call__(environ, start_response)
            body = b"".join(response)
            response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return [body]


def _strategy(operation, rows: dict[str, int], mode: GenerationMode):
    # Same ids for every parameter the operation has; the generated ones stay in the mix.
    known = {name: rows[name] for name in ID_PARAMETERS if name in str(operation.path)}
    strategies = [operation.as_strategy(generation_mode=mode)]
    if known and mode == GenerationMode.POSITIVE:
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=known))
    return st.one_of(strategies)


def test_no_api_operation_answers_with_a_server_error(fuzz_rows, settings_fixture_for_fuzz, capsys):
    token = api_token_create(user=UserFactory(roles=["ml_admin"]), name="test").secret
    auth = {"Authorization": f"Token {token}"}
    application = _WSGIHandlerKeepingTheTestConnection()
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    requests: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    without_negative_cases: list[str] = []
    started = time.monotonic()

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=_strategy(operation, fuzz_rows, mode))
            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def exercise(case):
                requests[operation.label] += 1
                try:
                    response = case.call_and_validate(headers=auth, checks=[not_a_server_error])
                except AssertionError as failure:  # schemathesis' check failures are AssertionErrors
                    failures.append(f"{operation.label} [{mode.value}]: {str(failure)[:500]}\n{case.as_curl_command()}")
                    return
                statuses[response.status_code] += 1

            try:
                exercise()
            except Unsatisfiable:
                # An operation with nothing to violate (no parameters, no body) has no negative cases.
                assert mode == GenerationMode.NEGATIVE, operation.label
                without_negative_cases.append(operation.label)

    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nschemathesis: {sum(requests.values())} requests over {len(operations)} operations in "
              f"{elapsed:.1f}s; {len(failures)} server errors; statuses {dict(sorted(statuses.items()))}; "
              f"no negative cases for {without_negative_cases}")
    assert len(operations) >= 14
    assert set(requests) == {operation.label for operation in operations}
    assert sum(requests.values()) >= 10 * len(operations)
    assert failures == [], "\n\n".join(failures[:10])


@pytest.fixture
def settings_fixture_for_fuzz(settings, tmp_path):
    # Nothing generated may wait: a valid upload with ?wait would otherwise sit out the full wait.
    settings.STEELQC_API_MAX_WAIT_SECONDS = 0
    # Generous rates: the fuzzer must meet the handlers, not the throttle.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "read": "100000/min", "upload": "100000/min", "write": "100000/min"}}
    return settings
