"""In Chromium: an ML admin finds People in the Administration menu, makes a login with the role qa
and copies its password link; the new person opens the link, chooses a password, logs in, and an
administration page answers with the site's own 403 page naming the role it needs."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot
from .test_content_security_policy import _watch

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_make_a_login_hand_over_its_link_and_meet_the_403_page(page, users):
    users("ml_admin", "people-admin")
    violations = _watch(page)
    log_in(page, "people-admin")
    page.click('[data-nav="administration"] summary')
    page.click('[data-nav="people"]')
    assert page.locator("h1").inner_text() == "People"
    page.fill("input[name=username]", "anna")
    page.select_option("select[name=role]", "qa")
    page.get_by_role("button", name="Make login").click()
    page.wait_for_load_state()
    link = page.get_by_test_id("password-link").input_value()
    assert "/accounts/password/" in link
    assert "qa" in page.locator('tr[data-person="anna"] .person-roles').inner_text()
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.getElementById('password-link-status').textContent !== ''")
    screenshot(page, "people.png")

    page.get_by_role("button", name="Log out").click()
    page.goto(link)
    page.fill("#id_new_password1", "steel-strip-42")
    page.fill("#id_new_password2", "steel-strip-42")
    page.get_by_role("button", name="Set password").click()
    assert page.locator("h1").inner_text() == "Password set"
    log_in(page, "anna", "steel-strip-42")
    page.goto("/accounts/people/")
    assert page.locator("h1").inner_text() == "Not allowed"
    assert "People are managed by the role ml_admin" in page.get_by_test_id("refusal").inner_text()
    assert page.locator('[data-nav="queue"]').is_visible()
    screenshot(page, "forbidden.png")
    assert violations == []
