"""What is left to review, counted in two kinds with the same words on every page: images that
need a person (flagged, suspect, unlabelled) apart from labelled images nobody confirmed."""

from __future__ import annotations

import re

import pytest

from inspections.catalog.services.suspects import suspect_labels_flag
from inspections.models import DefectClass
from inspections.review import selectors as review_selectors
from tests.factories import InspectionImageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def backlog(predicted_image):
    """Two imported labels nobody confirmed (one predicted calmly, one never predicted), and four
    images that need a person: flagged, unlabelled, suspect, flagged and unlabelled."""
    crazing = DefectClass.objects.get_or_create(name="crazing")[0]
    DefectClass.objects.get_or_create(name="inclusion")
    calm = {"crazing": 0.95, "inclusion": 0.05}
    predicted_image(calm, label=crazing, label_source="import")
    InspectionImageFactory(label=crazing, label_source="import")
    predicted_image(calm, needs_review=True, label=crazing, label_source="import")
    predicted_image(calm)
    suspect = predicted_image(calm, label=crazing, label_source="import")
    suspect_labels_flag(image_ids=[suspect.pk], flagged=[
        {"image_id": suspect.pk, "label": "crazing", "suggested_label": "inclusion", "score": 0.9, "issue": True}])
    predicted_image(calm, needs_review=True)
    return suspect


def _count(html: str, key: str) -> str:
    found = re.findall(rf'data-count="{key}"[^>]*><strong>(\d+)</strong> ([^<]+)</span>', html)
    assert len(found) == 1, (key, found)
    return " ".join(found[0])


def test_counts_keep_what_needs_a_person_apart_from_labels_nobody_confirmed(backlog):
    counts = review_selectors.review_queue_counts()
    assert (counts["need_person"], counts["unconfirmed"], counts["left"]) == (4, 2, 6)
    assert (counts["flagged"], counts["suspect_label"], counts["unlabelled"]) == (2, 1, 2)


def test_queue_review_view_and_dashboard_say_the_same_numbers_in_the_same_words(client, role_user, backlog):
    client.force_login(role_user("qa"))
    pages = [client.get(url).content.decode() for url in ("/review/", f"/review/{backlog.pk}/", "/dashboard/")]
    for html in pages:
        assert _count(html, "need_person") == "4 need a person"
        assert _count(html, "unconfirmed") == "2 labelled, not yet confirmed"
        assert "</strong> left</span>" not in html
    refreshed = client.get("/review/counts/").json()  # what the review view's script refreshes them from
    assert (refreshed["need_person"], refreshed["unconfirmed"]) == (4, 2)
