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
    # Each menu starts at the model's most frequent guess for the group, not at the first class.
    assert html.count('<option value="crazing" selected>') == 2 and html.count(" selected>") == 2


def test_a_viewer_sees_the_groups_but_no_way_to_name_them(client, groups):
    html = _page(client, "viewer")
    assert html.count('class="novelty-group"') == 2
    assert "group-label" not in html and "Exclude all" not in html


def test_without_an_active_model_the_page_says_so(client):
    assert "No model is active" in _page(client, "qa")


def test_the_last_bulk_decision_is_offered_for_undo_and_undone_by_the_page(client, groups):
    from inspections.models import InspectionImage, Review
    from inspections.review.services.bulk_reviews import reviews_bulk_submit

    small, _ = groups
    qa = UserFactory(roles=["qa"])
    client.force_login(qa)
    decided = reviews_bulk_submit(items=[(pk, 0) for pk in small], reviewer=qa, label_name="patches")
    bulk_id = str(decided[0].review.bulk_id)
    html = client.get("/review/groups/").content.decode()
    assert f'data-bulk-id="{bulk_id}"' in html
    assert re.search(r"Your last bulk decision: labelled 2 images as patches, [\d-]+ [\d:]+\.", html)

    response = client.post("/review/groups/undo/", {"bulk_id": bulk_id})
    assert response.status_code == 200 and response.json() == {"undone": 2, "failed": []}
    assert list(InspectionImage.objects.filter(pk__in=small).values_list("label", flat=True)) == [None, None]
    assert Review.objects.filter(decision="undo", reviewer=qa).count() == 2
    html = client.get("/review/groups/").content.decode()
    assert 'data-bulk-id=""' in html and "those images are back as they were" in html
    assert client.post("/review/groups/undo/", {"bulk_id": bulk_id}).json()["error"]["code"] == "already_undone"
