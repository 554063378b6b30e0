"""The look-alike groups page lists the waiting foreign images' groups largest first, with each
member's label_version for the bulk decision; labelling forms only for roles that may label."""

from __future__ import annotations

import re

import numpy as np
import pytest

from inspections.registry.services.model_versions import model_version_promote
from inspections.review.services.similarity import embedding_bytes
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def groups(settings):
    settings.STEELQC_NOVELTY_GROUP_RADIUS = 0.5
    version = ModelVersionFactory()
    model_version_promote(version=version)
    rng = np.random.default_rng(9)
    made = []
    for size in (2, 5):
        centre = rng.normal(size=424)
        members = []
        for _ in range(size):
            vector = centre + 0.01 * rng.normal(size=424)
            image = InspectionImageFactory()
            PredictionFactory(image=image, model_version=version, review_reasons=["foreign"],
                              embedding=embedding_bytes(vector / np.linalg.norm(vector)))
            members.append(image.pk)
        made.append(members)
    return made


def _page(client, role):
    client.force_login(UserFactory(roles=[role]))
    response = client.get("/review/groups/")
    assert response.status_code == 200
    return response.content.decode()


def test_groups_are_listed_largest_first_with_their_members_versions(client, groups):
    small, large = groups
    html = _page(client, "qa")
    members = re.findall(r'data-members="([^"]+)"', html)
    assert [sorted(int(pair.split(":")[0]) for pair in m.split(",")) for m in members] == [sorted(large), sorted(small)]
    assert all(pair.endswith(":0") for pair in members[0].split(","))
    assert "and 1 more" in html  # 5 members, 4 representatives shown
    assert "Label all 5" in html and 'value="no_defect"' in html


def test_a_viewer_sees_the_groups_but_no_way_to_name_them(client, groups):
    html = _page(client, "viewer")
    assert html.count('class="novelty-group"') == 2
    assert "group-label" not in html and "Exclude all" not in html


def test_without_an_active_model_the_page_says_so(client):
    assert "No model is active" in _page(client, "qa")
