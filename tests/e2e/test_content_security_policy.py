"""In Chromium, with the strict Content-Security-Policy on: no page reports a violation — the
app's pages (the review page's probability bars included), the login and lockout pages, Swagger
UI and the admin. A violation is what the browser logs as refused by the policy."""

from __future__ import annotations

import pytest
from django.conf import settings
from django_celery_beat.models import CrontabSchedule

from inspections.models import DefectClass, ImageStatus, Prediction
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from tests.factories import InspectionImageFactory, ModelVersionFactory, TrainingRunFactory, UserFactory

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _watch(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    return violations


def _visit(page, paths) -> None:
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status < 400, f"{path}: {response.status if response else None}"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")


def _predicted_image():
    version = ModelVersionFactory()
    image = InspectionImageFactory(status=ImageStatus.PREDICTED)
    crazing = DefectClass.objects.get_or_create(name="crazing")[0]
    DefectClass.objects.get_or_create(name="inclusion")
    Prediction.objects.create(image=image, model_version=version, label=crazing, confidence=0.7, margin=0.4,
                              probabilities={"crazing": 0.7, "inclusion": 0.3}, needs_review=True, ood_score=0.2)
    images_latest_prediction_refresh(image_ids=[image.pk])
    return image, version


def test_no_page_reports_a_policy_violation(page, users):
    users("ml_admin", "ml-csp")
    image, version = _predicted_image()
    run = TrainingRunFactory()
    violations = _watch(page)
    _visit(page, ["/accounts/login/"])
    log_in(page, "ml-csp")
    _visit(page, ["/", "/dashboard/", "/review/", "/review/groups/", f"/review/{image.pk}/", "/upload/",
                  "/upload/bulk/", "/models/", f"/models/{version.pk}/", "/training/", f"/training/{run.pk}/",
                  "/accounts/lockouts/", "/api/v1/docs/"])
    page.goto(f"/review/{image.pk}/")
    widths = page.locator("#probabilities .prob-bar-svg").evaluate_all(
        "svgs => svgs.map(s => s.querySelector('rect').getBoundingClientRect().width / s.getBoundingClientRect().width)")
    assert [round(w, 2) for w in widths] == [0.7, 0.3]
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info")
    assert violations == []


def test_the_admin_and_the_lockout_page_report_no_violation(page, users):
    admin = UserFactory(username="admin-csp", is_staff=True, is_superuser=True)
    admin.save()
    locked = UserFactory(username="locked-csp", roles=["qa"])
    crontab = CrontabSchedule.objects.create(minute="0", hour="3")
    violations = _watch(page)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto("/accounts/login/")
        page.fill("#id_username", "locked-csp")
        page.fill("#id_password", "wrong")
        page.press("#id_password", "Enter")
        page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Login locked"
    log_in(page, "admin-csp")
    _visit(page, ["/admin/", "/admin/auth/user/", f"/admin/auth/user/{locked.pk}/change/", "/admin/auth/group/add/",
                  "/admin/inspections/inspectionimage/", "/admin/inspections/authevent/",
                  "/admin/django_celery_beat/periodictask/add/"])
    # The periodic task form's script, moved to a static file, still explains the chosen crontab.
    page.select_option("#id_crontab", str(crontab.pk))
    assert "Translation: At" in page.locator(".field-crontab .help").inner_text()
    assert violations == []
