"""In Chromium: a person who keeps typing the wrong password gets the lockout page, which says
until when; the right password is refused meanwhile; an ML admin unlocks it on the Locked logins
page and the person gets in."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from .conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _try(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_load_state()


def test_locked_out_person_sees_when_to_retry_and_an_ml_admin_unlocks(page, users, chromium, live_server):
    users("qa", "operator1")
    users("ml_admin", "mladmin1")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _try(page, "operator1", "wrong")
        assert page.get_by_role("alert").inner_text().strip() != ""
        assert page.locator("h1").inner_text() == "Log in"
    _try(page, "operator1", "wrong")
    assert page.locator("h1").inner_text() == "Login locked"
    message = page.get_by_role("alert").inner_text()
    assert "operator1" in message and "even with the right password" in message
    assert re.search(r"Try again after \d\d:\d\d \(UTC\), in 1[45]\sminutes", message), message
    _try(page, "operator1", "pw")
    assert page.locator("h1").inner_text() == "Login locked"
    screenshot(page, "login-locked.png")

    admin_context = chromium.new_context(base_url=live_server.url)
    admin_page = admin_context.new_page()
    log_in(admin_page, "mladmin1")
    admin_page.goto("/accounts/lockouts/")
    row = admin_page.locator("table.lockouts tbody tr", has_text="operator1")
    row.get_by_role("button", name="Unlock").click()
    admin_page.wait_for_url("**/accounts/lockouts/")
    assert "Unlocked: operator1" in admin_page.locator("ul.messages").inner_text()
    admin_context.close()

    log_in(page, "operator1")
    assert page.locator(".account .user").inner_text() == "operator1"
