"""Every page of the site has an explicit rule, walked from the URLconf: a new page without a
rule fails here. Anonymous visitors are sent to the login page; a role that may not see or do
something gets 403; the API has its own matrix in tests/inspections/api/test_permissions.py."""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import dataclass

import pytest
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from inspections.models import DefectClass, InspectionImage, ModelVersionStatus, TrainingRun, TrainingRunStatus
from tests.factories import InspectionImageFactory, ModelVersionFactory, TrainingRunFactory, UserFactory, image_bytes

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


# A password link is the credential itself (Django's reset token, made on the People page).
PUBLIC = {"healthz", "login", "logout", "favicon", "password-reset-confirm", "password-reset-complete"}
RULES: dict[str, list[Rule]] = {
    "inspections:home": [Rule("get", EVERY_ROLE)],
    "inspections:dashboard": [Rule("get", EVERY_ROLE)],
    "inspections:model-confusion-matrix": [Rule("get", EVERY_ROLE)],
    "inspections:upload": [Rule("get", UPLOADERS)],
    "inspections:upload-bulk": [Rule("get", UPLOADERS)],
    "inspections:upload-zip": [Rule("post", UPLOADERS)],
    "inspections:upload-answers": [Rule("get", UPLOADERS)],
    "inspections:review-queue": [Rule("get", REVIEWERS)],
    "inspections:review-counts": [Rule("get", REVIEWERS)],
    "inspections:review-image": [Rule("get", REVIEWERS)],
    "inspections:image-heatmap": [Rule("get", REVIEWERS)],
    "inspections:image-anomaly-map": [Rule("get", REVIEWERS)],
    "inspections:review-decide": [Rule("post", LABELLERS)],
    "inspections:review-undo": [Rule("post", LABELLERS)],
    "inspections:novelty-groups": [Rule("get", REVIEWERS)],
    "inspections:novelty-undo": [Rule("post", LABELLERS)],
    "registry:model-versions": [Rule("get", EVERY_ROLE)],
    "registry:model-version": [Rule("get", EVERY_ROLE)],
    "registry:model-version-plot": [Rule("get", EVERY_ROLE)],
    "registry:model-version-promote": [Rule("post", MODEL_ADMINS)],
    "registry:model-version-rollback": [Rule("post", MODEL_ADMINS)],
    "registry:training-runs": [Rule("get", EVERY_ROLE)],
    "registry:training-run-start": [Rule("post", MODEL_ADMINS)],
    "registry:training-run": [Rule("get", EVERY_ROLE)],
    "registry:training-run-cancel": [Rule("post", MODEL_ADMINS)],
    "login-lockouts": [Rule("get", MODEL_ADMINS)],
    "login-lockout-unlock": [Rule("post", MODEL_ADMINS)],
    "api-tokens": [Rule("get", MODEL_ADMINS)],
    "api-token-revoke": [Rule("post", MODEL_ADMINS)],
    "people": [Rule("get", MODEL_ADMINS)],
    "person-role": [Rule("post", MODEL_ADMINS)],
    "person-active": [Rule("post", MODEL_ADMINS)],
    "person-password-link": [Rule("post", MODEL_ADMINS)],
    "registry:model-version-compare": [Rule("get", EVERY_ROLE)],
    "registry:model-version-thresholds": [Rule("post", MODEL_ADMINS)],
    "registry:model-version-box-thresholds": [Rule("post", MODEL_ADMINS)],
    "inspections:retention": [Rule("get", MODEL_ADMINS)],
    "inspections:retention-remove": [Rule("post", MODEL_ADMINS)],
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


def _version_with_plots() -> dict:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from mlcore.artefact import PLOT_FILES

    version = ModelVersionFactory(status=ModelVersionStatus.CANDIDATE, artifact_path=f"models/perm-{uuid.uuid4().hex}")
    for file_name in PLOT_FILES.values():
        default_storage.save(f"{version.artifact_path}/{file_name}", ContentFile(b"\x89PNG plot"))
    return {"version_id": version.pk}


def _labelled_image() -> dict:
    image = InspectionImageFactory(label=DefectClass.objects.get_or_create(name="crazing")[0], label_source="import")
    return {"image_id": image.pk}


def _reviewed_image(request) -> dict:
    """An image with one decision by the caller, who is logged in as its author (``_user``); by a qa
    person for a caller who may not label (refused before it is looked at)."""
    from inspections.review.services.reviews import review_submit

    caller = request.node.callspec.params["caller"]
    author = None
    if caller == "superuser":
        author = UserFactory(is_superuser=True, is_staff=True)
    elif caller in LABELLERS:
        author = UserFactory(roles=[caller])
    world = _labelled_image()
    image = InspectionImage.objects.get(pk=world["image_id"])
    review = review_submit(image=image, label_name="crazing", reviewer=author or UserFactory(roles=["qa"]),
                           expected_version=0)
    return {**world, "review_id": review.pk, **({"_user": author} if author else {})}


def _image_and_active_model(request) -> dict:
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    model_version_promote(version=model_version_register(model_dir=request.getfixturevalue("tiny_model_dirs")[0]))
    return _labelled_image()


def _image_and_active_anomaly_model(request) -> dict:
    from inspections.review.services.latest_prediction import images_latest_prediction_refresh
    from tests.factories import PredictionFactory
    from inspections.registry.services.model_versions import model_version_promote, model_version_register

    version = model_version_promote(
        version=model_version_register(model_dir=request.getfixturevalue("tiny_anomaly_model_dir")))
    world = _labelled_image()
    PredictionFactory(image_id=world["image_id"], model_version=version, anomaly_version=version, anomaly_score=1.0)
    images_latest_prediction_refresh(image_ids=[world["image_id"]])
    return world


def _trainable_images(request) -> dict:
    from inspections.catalog.services.dataset_import import dataset_import_folder
    from tests.conftest import tiny_dataset

    folder = request.getfixturevalue("tmp_path") / "data"
    settings = request.getfixturevalue("settings")
    settings.STEELQC_CLASS_MIN_TRAIN_IMAGES, settings.STEELQC_CLASS_MIN_TEST_IMAGES = 1, 0  # 5 a class: too few to be ready
    tiny_dataset(folder, per_class=5)
    dataset_import_folder(root=folder)
    return {}


def _two_versions_promoted_in_turn() -> dict:
    from inspections.registry.services.model_versions import model_version_promote

    model_version_promote(version=ModelVersionFactory())
    model_version_promote(version=ModelVersionFactory())
    return {}


def _bulk_decision_of_the_caller() -> str:
    """The id of a bulk decision by the user the test just logged in (the latest made); any id for
    a caller who may not label (refused before it is looked at)."""
    from django.contrib.auth import get_user_model

    from inspections.access import roles
    from inspections.review.services.bulk_reviews import reviews_bulk_submit

    caller = get_user_model().objects.order_by("-id").first()
    if caller is None or not roles.can_label(caller):
        return str(uuid.uuid4())
    image = _labelled_image()["image_id"]
    outcomes = reviews_bulk_submit(items=[(image, 0)], reviewer=caller, label_name="crazing")
    return str(outcomes[0].review.bulk_id)


def _api_token() -> int:
    from inspections.access.services.api_tokens import api_token_create

    return api_token_create(user=UserFactory(roles=["integrator"]), name="permissions").token.pk


# What each page needs to exist (and each action to succeed), built only for the page under test.
WORLD = {
    "inspections:model-confusion-matrix": lambda request: _version_with_plots(),
    "inspections:review-image": lambda request: _labelled_image(),
    "inspections:image-heatmap": _image_and_active_model,
    "inspections:image-anomaly-map": _image_and_active_anomaly_model,
    "inspections:review-decide": lambda request: _labelled_image(),
    "inspections:review-undo": _reviewed_image,
    "registry:model-version": lambda request: _version_with_plots(),
    "registry:model-version-plot": lambda request: {**_version_with_plots(), "plot": "confusion_matrix"},
    "registry:model-version-promote": lambda request: _version_with_plots(),
    "registry:model-version-rollback": lambda request: _two_versions_promoted_in_turn(),
    "registry:training-run": lambda request: {"run_id": TrainingRunFactory(status=TrainingRunStatus.SUCCEEDED).pk},
    "registry:training-run-start": _trainable_images,
    "registry:training-run-cancel": lambda request: {"run_id": TrainingRunFactory(status=TrainingRunStatus.QUEUED).pk},
    "api-token-revoke": lambda request: {"token_id": _api_token()},
    "person-role": lambda request: {"person_id": UserFactory(roles=["viewer"]).pk},
    "person-active": lambda request: {"person_id": UserFactory(roles=["viewer"]).pk},
    "person-password-link": lambda request: {"person_id": UserFactory(roles=["viewer"]).pk},
    "registry:model-version-thresholds": lambda request: _version_with_plots(),
    "registry:model-version-box-thresholds": lambda request: _version_with_plots(),
}


def _zip_of_one_image() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("crazing/one.png", image_bytes(seed=7))
    return SimpleUploadedFile("images.zip", buffer.getvalue(), content_type="application/zip")


POST_DATA = {
    "inspections:review-decide": lambda: {"label": "crazing"},
    "inspections:upload-zip": lambda: {"file": _zip_of_one_image()},
    "inspections:novelty-undo": lambda: {"bulk_id": _bulk_decision_of_the_caller()},
    "registry:training-run-start": lambda: {"backbone": "efficientnet_lite0", "finetune": "off"},
    "login-lockout-unlock": lambda: {"username": "someone", "ip_address": "10.0.0.1"},
    "person-role": lambda: {"role": "qa"},
    "person-active": lambda: {"active": "0"},
    "inspections:retention-remove": lambda: {"source": "line-9"},
    "registry:model-version-thresholds": lambda: {"threshold-crazing": "0.8", "note": "permissions"},
    "registry:model-version-box-thresholds": lambda: {"box-threshold-crazing": "0.45", "note": "permissions"},
}

# Where an allowed action sends its caller (the URL name, with the page's own arguments where given).
REDIRECTS = {
    "inspections:review-decide": lambda kwargs: reverse("inspections:review-queue"),
    "inspections:review-undo": lambda kwargs: reverse("inspections:review-image", kwargs={"image_id": kwargs["image_id"]}),
    "registry:model-version-promote": lambda kwargs: reverse("registry:model-versions"),
    "registry:model-version-rollback": lambda kwargs: reverse("registry:model-versions"),
    "registry:training-run-start": lambda kwargs: reverse(
        "registry:training-run", kwargs={"run_id": TrainingRun.objects.latest("id").pk}),
    "registry:training-run-cancel": lambda kwargs: reverse("registry:training-run", kwargs=kwargs),
    "login-lockout-unlock": lambda kwargs: reverse("login-lockouts"),
    "api-token-revoke": lambda kwargs: reverse("api-tokens"),
    "person-role": lambda kwargs: reverse("people"),
    "person-active": lambda kwargs: reverse("people"),
    "registry:model-version-thresholds": lambda kwargs: reverse("registry:model-version", kwargs=kwargs) + "#thresholds",
    "registry:model-version-box-thresholds": lambda kwargs: reverse("registry:model-version", kwargs=kwargs)
    + "#box-thresholds",
    "inspections:retention-remove": lambda kwargs: reverse("inspections:retention"),
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
def test_page_permission(client, request, no_queue, name, rule, caller):
    # Allowed actions run for real; nothing may be queued on a broker from here.
    kwargs = WORLD[name](request) if name in WORLD else {}
    author = kwargs.pop("_user", None)   # the world's own user for this caller (an action on their own work)
    if author is not None:
        client.force_login(author)
    else:
        _login(client, caller)
    url = reverse(name, kwargs=kwargs)
    data = POST_DATA.get(name, dict)() if rule.method == "post" else None
    response = getattr(client, rule.method)(url, data)
    if caller == "anonymous":
        assert response.status_code in (302, 401, 403), response.status_code
        if response.status_code == 302:
            assert "/accounts/login/" in response["Location"]
    elif caller in rule.allowed:
        refused = f"{caller} got {response.status_code} for {rule.method.upper()} {url}"
        if name in REDIRECTS:
            assert response.status_code == 302, refused
            assert response["Location"] == REDIRECTS[name](kwargs), refused
            errors = [str(m) for m in get_messages(response.wsgi_request) if m.level >= message_levels.WARNING]
            assert errors == [], f"{refused}: {errors}"
        else:
            assert response.status_code == 200, refused
    else:
        assert response.status_code == 403, f"{caller} got {response.status_code} for {rule.method.upper()} {url}"
