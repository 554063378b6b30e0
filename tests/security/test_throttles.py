"""API rates are one budget for every web process (counted in Redis), and requests that end
unauthenticated are limited per client address before their credentials are looked at."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from inspections.api import authentication, throttling
from tests.factories import UserFactory
from tests.inspections.api.conftest import assert_error

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
CLASSES = "/api/v1/classes/"


def _rates(settings, **rates) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "read": "1000/min", "upload": "1000/min", "write": "1000/min", "anon": "1000/min", **rates}}


def _token_client(secret: str, address: str = "10.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def _secret(role: str = "viewer") -> str:
    return api_token_create(user=UserFactory(roles=[role]), name="test", scope="admin").secret


def _throttle_keys(settings) -> list[bytes]:
    client = redis.Redis.from_url(settings.STEELQC_EVENTS_REDIS_URL)
    return list(client.scan_iter(match=f"{throttling.KEY_PREFIX}{connection.settings_dict['NAME']}:*"))


def test_two_clients_of_one_user_draw_on_one_budget_kept_in_redis(settings):
    _rates(settings, read="3/min")
    secret = _secret()
    first, second = _token_client(secret, "10.0.0.1"), _token_client(secret, "10.0.0.2")
    assert [first.get(CLASSES).status_code, second.get(CLASSES).status_code, first.get(CLASSES).status_code] \
        == [200, 200, 200]
    cache.clear()  # nothing of the count is in this process's memory
    response = second.get(CLASSES)
    error = assert_error(response, 429, "throttled")
    assert 55 <= error["details"]["retry_after_s"] <= 60
    assert 55 <= int(response["Retry-After"]) <= 60
    assert first.get(CLASSES).status_code == 429
    assert _throttle_keys(settings)


SCRIPT = textwrap.dedent("""
    import json, sys
    import django
    django.setup()
    from django.test import Client
    from django.test.utils import setup_test_environment
    setup_test_environment()
    client = Client(HTTP_AUTHORIZATION="Token " + sys.argv[1])
    client.get("/healthz")  # imports and connections warm before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    statuses = [client.get("/api/v1/classes/").status_code for _ in range(int(sys.argv[2]))]
    print(json.dumps(statuses), flush=True)
""")


@pytest.mark.django_db(transaction=True)
def test_the_limit_holds_across_web_processes(settings):
    # Two processes, as two gunicorn workers: 16 requests at once against a budget of 10.
    secret = _secret()
    db = settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "steelqc.settings.test", "STEELQC_API_THROTTLE_READ": "10/min",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                           f"{connection.settings_dict['NAME']}",
           "CELERY_BROKER_URL": settings.CELERY_BROKER_URL, "STEELQC_EVENTS_REDIS_URL": settings.STEELQC_EVENTS_REDIS_URL}
    processes = [subprocess.Popen([sys.executable, "-c", SCRIPT, secret, "8"], cwd=ROOT, env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)]
    watchdog = threading.Timer(120, lambda: [process.kill() for process in processes])
    watchdog.start()
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        statuses = [json.loads(process.stdout.readline()) for process in processes]
    finally:
        watchdog.cancel()
        for process in processes:
            process.kill()
            process.wait()
    every = statuses[0] + statuses[1]
    assert all(statuses), statuses
    assert (every.count(200), every.count(429)) == (10, 6), statuses


def test_invalid_token_flood_is_refused_before_any_lookup(settings, monkeypatch):
    _rates(settings, anon="5/min")
    lookups = []
    real = authentication.api_token_authenticate
    monkeypatch.setattr(authentication, "api_token_authenticate",
                        lambda key, **kwargs: lookups.append(key) or real(key, **kwargs))
    flood = _token_client("not-a-token-" + "x" * 30, "203.0.113.7")
    assert [flood.get(CLASSES).status_code for _ in range(5)] == [401] * 5
    response = flood.get(CLASSES)
    error = assert_error(response, 429, "throttled")
    assert 0 < error["details"]["retry_after_s"] <= 60 and 0 < int(response["Retry-After"]) <= 60
    assert flood.post(CLASSES, {"name": "dent"}, format="json").status_code == 429
    assert len(lookups) == 5  # refused ones cost no lookup
    secret = _secret()
    assert _token_client(secret, "203.0.113.7").get(CLASSES).status_code == 429  # that address waits
    assert _token_client(secret, "198.51.100.2").get(CLASSES).status_code == 200


def test_anonymous_flood_is_throttled_per_address(settings):
    _rates(settings, anon="5/min")
    flood = APIClient(REMOTE_ADDR="203.0.113.8")
    assert [flood.get(CLASSES).status_code for _ in range(5)] == [401] * 5
    response = flood.get(CLASSES)
    assert_error(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60
    assert APIClient(REMOTE_ADDR="203.0.113.9").get(CLASSES).status_code == 401


def test_a_spoofed_forwarded_for_header_does_not_escape_the_address_budget(settings):
    _rates(settings, anon="3/min")
    settings.STEELQC_TRUSTED_PROXY_COUNT = 0
    flood = APIClient(REMOTE_ADDR="203.0.113.10")
    statuses = [flood.get(CLASSES, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_requests_with_valid_credentials_do_not_count(settings):
    _rates(settings, anon="2/min")
    valid = _token_client(_secret(), "203.0.113.11")
    assert [valid.get(CLASSES).status_code for _ in range(4)] == [200] * 4
    anonymous = APIClient(REMOTE_ADDR="203.0.113.11")
    assert [anonymous.get(CLASSES).status_code for _ in range(3)] == [401, 401, 429]


def test_pages_are_not_limited_by_the_api_budget(settings, client):
    _rates(settings, anon="1/min")
    flood = APIClient(REMOTE_ADDR="203.0.113.12")
    assert [flood.get(CLASSES).status_code for _ in range(2)] == [401, 429]
    assert client.get("/accounts/login/", REMOTE_ADDR="203.0.113.12").status_code == 200


def test_a_failing_redis_lets_requests_through_and_warns_once(settings, caplog):
    _rates(settings, read="1/min")
    settings.STEELQC_EVENTS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    client = _token_client(_secret())
    with caplog.at_level(logging.WARNING, logger="inspections.api.throttling"):
        assert [client.get(CLASSES).status_code for _ in range(3)] == [200] * 3
    warnings = [record for record in caplog.records if record.name == "inspections.api.throttling"]
    assert len(warnings) == 1 and "Redis failed" in warnings[0].getMessage()


def test_without_redis_each_process_counts_its_own(settings):
    _rates(settings, read="2/min")
    settings.STEELQC_EVENTS_REDIS_URL = ""  # the embedded installation
    client = _token_client(_secret())
    assert [client.get(CLASSES).status_code for _ in range(3)] == [200, 200, 429]
    cache.clear()  # this process's memory held the count
    assert client.get(CLASSES).status_code == 200
