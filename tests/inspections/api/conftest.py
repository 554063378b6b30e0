"""API test helpers: clients authenticated with a real token per role."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from inspections.access.services.api_tokens import api_token_create
from tests.factories import UserFactory

ROLES = ("viewer", "integrator", "qa", "ml_admin")


def client_for(role: str | None, scope: str = "admin") -> APIClient:
    """``None`` is anonymous; ``"superuser"`` a superuser without groups; otherwise one role group.
    The token has ``scope`` (admin: all the role allows)."""
    client = APIClient()
    if role is None:
        return client
    if role == "superuser":
        user = UserFactory(is_superuser=True, is_staff=True)
    else:
        user = UserFactory(roles=[role])
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user, name='test', scope=scope).secret}")
    client.user = user
    return client


@pytest.fixture
def api_client_for():
    return client_for


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    # Without Redis (a test that clears STEELQC_EVENTS_REDIS_URL) throttle windows live in the
    # cache; a test must not inherit another's. The Redis windows: tests/conftest.py.
    cache.clear()
    yield
    cache.clear()


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has ``status`` and the API's error shape; returns the error object."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error
