"""Every page of the site has an explicit rule, walked from the URLconf: a new page without a
rule fails here. Anonymous visitors are sent to the login page; a role that may not see or do
something gets 403; the API has its own matrix in tests/inspections/api/test_permissions.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from inspections.models import DefectClass, ModelVersionStatus, TrainingRunStatus
from tests.factories import InspectionImageFactory, ModelVersionFactory, TrainingRunFactory, UserFactory

pytestmark = pytest.mark.django_db

EVERY_ROLE = {"viewer", "integrator", "qa", "ml_admin", "superuser"}
REVIEWERS = {"viewer", "qa", "ml_admin", "superuser"}
LABELLERS = {"qa", "ml_admin", "superuser"}
UPLOADERS = {"integrator", "qa", "ml_admin", "superuser"}
MODEL_ADMINS = {"ml_admin", "superuser"}
CALLERS = ["anonymous", "norole", "viewer", "integrator", "qa", "ml_admin", "superuser"]


@dataclass(frozen=True)
class Rule:
    method: str
    allowed: set[str]


PUBLIC = {"healthz", "login", "logout"}
RULES: dict[str, list[Rule]] = {
    "inspections:home": [Rule("get", EVERY_ROLE)],
    "inspections:dashboard": [Rule("get", EVERY_ROLE)],
    "inspections:model-confusion-matrix": [Rule("get", EVERY_ROLE)],
    "inspections:upload": [Rule("get", UPLOADERS)],
    "inspections:upload-bulk": [Rule("get", UPLOADERS)],
    "inspections:upload-zip": [Rule("post", UPLOADERS)],
    "inspections:review-queue": [Rule("get", REVIEWERS)],
    "inspections:review-counts": [Rule("get", REVIEWERS)],
    "inspections:review-image": [Rule("get", REVIEWERS)],
    "inspections:image-heatmap": [Rule("get", REVIEWERS)],
    "inspections:review-decide": [Rule("post", LABELLERS)],
    "registry:model-versions": [Rule("get", EVERY_ROLE)],
    "registry:model-version": [Rule("get", EVERY_ROLE)],
    "registry:model-version-plot": [Rule("get", EVERY_ROLE)],
    "registry:model-version-promote": [Rule("post", MODEL_ADMINS)],
    "registry:model-version-rollback": [Rule("post", MODEL_ADMINS)],
    "registry:training-runs": [Rule("get", EVERY_ROLE)],
    "registry:training-run-start": [Rule("post", MODEL_ADMINS)],
    "registry:training-run": [Rule("get", EVERY_ROLE)],
    "registry:training-run-cancel": [Rule("post", MODEL_ADMINS)],
}


def _page_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace: str = "") -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace in ("admin", "api") or str(pattern.pattern).startswith(("admin/", "api/")):
                    continue
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                names.add(f"{namespace}:{pattern.name}" if namespace else str(pattern.name))

    walk(get_resolver().url_patterns)
    return names


def test_every_page_in_the_urlconf_has_a_rule():
    names = _page_names()
    assert "inspections:review-queue" in names and "registry:model-versions" in names
    missing = sorted(names - set(RULES) - PUBLIC)
    assert missing == [], f"pages without a permission rule: {missing}"
    assert sorted(set(RULES) - names) == []


@pytest.fixture
def world() -> dict[str, dict]:
    image = InspectionImageFactory(label=DefectClass.objects.get_or_create(name="crazing")[0], label_source="import")
    version = ModelVersionFactory(status=ModelVersionStatus.CANDIDATE)
    run = TrainingRunFactory(status=TrainingRunStatus.SUCCEEDED)
    return {
        "inspections:model-confusion-matrix": {"version_id": version.pk},
        "inspections:review-image": {"image_id": image.pk},
        "inspections:image-heatmap": {"image_id": image.pk},
        "inspections:review-decide": {"image_id": image.pk},
        "registry:model-version": {"version_id": version.pk},
        "registry:model-version-plot": {"version_id": version.pk, "plot": "confusion_matrix"},
        "registry:model-version-promote": {"version_id": version.pk},
        "registry:training-run": {"run_id": run.pk},
        "registry:training-run-cancel": {"run_id": run.pk},
    }


def _login(client, caller: str) -> None:
    if caller == "anonymous":
        return
    if caller == "superuser":
        user = UserFactory(is_superuser=True, is_staff=True)
    elif caller == "norole":
        user = UserFactory()
    else:
        user = UserFactory(roles=[caller])
    client.force_login(user)


CASES = [(name, rule, caller) for name, rules in RULES.items() for rule in rules for caller in CALLERS]


@pytest.mark.parametrize("name, rule, caller", CASES, ids=[f"{n}-{r.method}-{c}" for n, r, c in CASES])
def test_page_permission(client, world, no_queue, name, rule, caller):
    # Allowed actions run for real; nothing may be queued on a broker from here.
    _login(client, caller)
    url = reverse(name, kwargs=world.get(name, {}))
    response = getattr(client, rule.method)(url, {"label": "crazing"} if rule.method == "post" else None)
    if caller == "anonymous":
        assert response.status_code in (302, 401, 403), response.status_code
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    elif caller in rule.allowed:
        assert response.status_code not in (401, 403), f"{caller} was refused {rule.method.upper()} {url}"
        assert response.status_code < 500
    else:
        assert response.status_code == 403, f"{caller} got {response.status_code} for {rule.method.upper()} {url}"
