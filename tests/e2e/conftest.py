"""Browser tests: headless Debian Chromium driven by Playwright's sync API against pytest-django's
live server. Playwright never downloads a browser here; it launches /usr/bin/chromium.

The tests are transactional (the live server runs in another thread) with serialized_rollback:
each starts from the rows the migrations made and, ending with a flush, leaves the database in
the state later serialized_rollback tests expect.

Without Chromium the tests skip with the reason locally and FAIL in CI (CI=true), so a CI run
can never pass by skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("STEELQC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Test runs keep their screenshots as artefacts under var/; `make screenshots` refreshes the
# ones the user guide shows (docs/screenshots) on purpose, so a test run never dirties the checkout.
SCREENSHOTS = Path(os.environ.get("STEELQC_SCREENSHOTS_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
VIEWPORT = {"width": 1366, "height": 768}

# Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make between
# browser steps are ordinary synchronous code, so Django's async-context guard is lifted here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.is_file():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); the browser tests need it."
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def users(transactional_db):
    from django.contrib.auth.models import Group

    from inspections.access.roles import ROLES
    from tests.factories import UserFactory

    for name in ROLES:  # in case an earlier transactional test flushed what the migrations made
        Group.objects.get_or_create(name=name)

    def make(role: str, username: str):
        return UserFactory(username=username, roles=[role])

    return make


@pytest.fixture
def registered_version(transactional_db, tiny_model_dirs):
    """The first tiny trained model, registered (not promoted) as a model version."""
    from inspections.registry.services.model_versions import model_version_register

    return model_version_register(model_dir=tiny_model_dirs[0])


def log_in(page, username: str, password: str = "pw") -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_url("**/")


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def uploaded_and_predicted(array, name: str):
    """Stores ``array`` as a PNG named ``name`` through the upload service and waits for the real
    worker's prediction (mark the test `worker`): (image, prediction)."""
    import io

    from PIL import Image

    from inspections.catalog.services.images import image_upload
    from inspections.models import Prediction
    from tests.conftest import wait_for

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    image = image_upload(content=buffer.getvalue(), filename=name, uploaded_by=None).image
    return image, wait_for(lambda: Prediction.objects.filter(image=image).first(), timeout=90)
