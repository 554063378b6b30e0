"""In Chromium: an ML admin makes an API token on the API tokens page, sees its secret once (with
a copy button), the secret works against the API, the page never shows it again, and after
Revoke the API refuses it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from inspections.models import ApiToken

from .conftest import log_in, screenshot
from .test_content_security_policy import _watch

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _api_status(live_server, secret: str) -> int:
    request = urllib.request.Request(f"{live_server.url}/api/v1/images/", headers={"Authorization": f"Token {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # nosec B310 - the test's own live server
            return response.status
    except urllib.error.HTTPError as error:
        assert "error" in json.loads(error.read())
        return error.code


def test_make_see_once_use_and_revoke_a_token(page, users, live_server):
    users("ml_admin", "tokens-admin")
    users("integrator", "press-7")
    violations = _watch(page)
    log_in(page, "tokens-admin")
    page.goto("/accounts/api-tokens/")
    assert page.locator("h1").inner_text() == "API tokens"
    page.fill("input[name=username]", "press-7")
    page.fill("input[name=name]", "press 7 camera")
    page.select_option("select[name=scope]", "upload")
    page.fill("input[name=expires_days]", "30")
    page.get_by_role("button", name="Make token").click()
    page.wait_for_load_state()

    secret = page.get_by_test_id("token-secret").inner_text().strip()
    assert secret.startswith("sqc_")
    token = ApiToken.objects.get()
    assert (token.user.username, token.name, token.scope) == ("press-7", "press 7 camera", "upload")
    assert token.expires_at is not None and secret not in token.digest
    row = page.locator(f"tr[data-token-prefix='{token.prefix}']")
    assert "press 7 camera" in row.inner_text() and "upload" in row.inner_text() and secret not in row.inner_text()
    page.click("#token-copy")
    page.wait_for_function("document.getElementById('token-copy-status').textContent !== ''")
    screenshot(page, "api-token-made.png")

    assert _api_status(live_server, secret) == 200
    page.goto("/accounts/api-tokens/")
    assert page.get_by_test_id("token-secret").count() == 0
    assert secret not in page.content()
    row = page.locator(f"tr[data-token-prefix='{token.prefix}']")
    assert "10." in row.inner_text() or "127.0.0.1" in row.inner_text()  # last use, with its address

    row.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state()
    assert "Revoked 'press 7 camera'" in page.locator("ul.messages").inner_text()
    assert "revoked" in page.locator(f"tr[data-token-prefix='{token.prefix}'] .token-state").inner_text()
    assert _api_status(live_server, secret) == 401
    assert violations == []
