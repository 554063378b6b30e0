"""A query parameter given twice is refused by every endpoint the same way (``images/``'s answer):
400 ``invalid``, ``details`` naming each repeated parameter. The check lives in ``ApiView``, so
the test walks the URL configuration: an endpoint added later is covered without a new test."""

from __future__ import annotations

import pytest
from django.urls import URLPattern

from inspections.api import urls as api_urls
from inspections.api.base import REPEATED_PARAMETER, ApiView
from tests.inspections.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db

API = "/api/v1/"


def _get_endpoints() -> list[str]:
    """Every ApiView route that answers GET, its ids filled with 1 (the check runs before any lookup)."""
    paths = []
    for pattern in api_urls.urlpatterns:
        view = getattr(pattern.callback, "view_class", None)
        if not isinstance(pattern, URLPattern) or view is None or not issubclass(view, ApiView):
            continue
        if not hasattr(view, "get"):
            continue
        route = str(pattern.pattern)
        for converter in ("<int:image_id>", "<int:version_id>", "<int:other_id>", "<int:run_id>"):
            route = route.replace(converter, "1")
        paths.append(API + route.replace("<str:name>", "saved_model.zip"))
    return paths


def test_the_walk_finds_the_endpoints_with_query_parameters():
    paths = _get_endpoints()
    for expected in ("images/", "dataset-export/", "line-stats/", "drift/", "images/1/similar/",
                     "novelty-groups/", "training-runs/", "model-versions/1/compare/1/"):
        assert API + expected in paths


@pytest.mark.parametrize("path", _get_endpoints())
def test_every_endpoint_refuses_a_repeated_parameter(path):
    response = client_for("superuser").get(path + "?split=train&split=test&page=1")
    error = assert_error(response, 400, "invalid")
    assert error["details"] == {"split": [REPEATED_PARAMETER]}


def test_dataset_export_refuses_two_splits_instead_of_using_the_last():
    response = client_for("ml_admin").get(API + "dataset-export/?split=train&split=test")
    assert assert_error(response, 400, "invalid")["details"] == {"split": [REPEATED_PARAMETER]}


def test_every_repeated_parameter_is_named_and_a_single_one_passes():
    client = client_for("ml_admin")
    error = assert_error(client.get(API + "line-stats/?hours=1&hours=2&source=a&source=b"), 400, "invalid")
    assert error["details"] == {"hours": [REPEATED_PARAMETER], "source": [REPEATED_PARAMETER]}
    assert client.get(API + "training-runs/?page=1").status_code == 200


def test_authentication_and_roles_answer_before_the_repeated_parameter():
    assert_error(client_for(None).get(API + "dataset-export/?split=a&split=b"), 401)
    assert_error(client_for("viewer").get(API + "dataset-export/?split=a&split=b"), 403)
