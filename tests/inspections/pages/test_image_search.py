"""One search, ``?q=``, on the review queue's page and on ``GET images/``: part of the file name or
the external id, case-insensitive; a whole number also finds the image with that id."""

from __future__ import annotations

import re

import pytest

from inspections.review import selectors as review_selectors
from tests.factories import InspectionImageFactory
from tests.inspections.api.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def images():
    return {
        "named": InspectionImageFactory(original_name="Cr_147.bmp"),
        "coil": InspectionImageFactory(original_name="top.png", external_id="COIL-4711"),
        "other": InspectionImageFactory(original_name="side.png", external_id="coil-9"),
    }


def _queue_ids(client, query: str) -> list[int]:
    html = client.get("/review/", {"q": query}).content.decode()
    return sorted(int(found) for found in re.findall(r'<tr data-image-id="(\d+)"', html))


def _api_ids(query: str) -> list[int]:
    response = client_for("viewer").get("/api/v1/images/", {"q": query})
    assert response.status_code == 200, response.content[:300]
    return sorted(row["id"] for row in response.json()["results"])


def test_file_name_external_id_and_image_id_are_found_the_same_way_on_the_queue_and_the_api(client, role_user, images):
    client.force_login(role_user("qa"))
    by_id = str(images["other"].pk)
    expected = {
        "cr_147": [images["named"].pk],
        "coil-47": [images["coil"].pk],
        " coil ": sorted([images["coil"].pk, images["other"].pk]),
        by_id: sorted({images["other"].pk} | {i.pk for i in images.values() if by_id in i.original_name}),
        "nothing-like-it": [],
    }
    for query, ids in expected.items():
        assert _queue_ids(client, query) == ids, query
        assert _api_ids(query) == ids, query
        assert sorted(review_selectors.image_list(filters={"q": query}).values_list("id", flat=True)) == ids


def test_the_queue_has_a_search_box_that_keeps_its_query_to_each_review_page(client, role_user, images):
    client.force_login(role_user("qa"))
    html = client.get("/review/", {"q": "coil-4711"}).content.decode()
    assert re.search(r'<input type="search" name="q" value="coil-4711"[^>]*placeholder="file name, external id or image id"',
                     html)
    assert f'href="/review/{images["coil"].pk}/?q=coil-4711"' in html
