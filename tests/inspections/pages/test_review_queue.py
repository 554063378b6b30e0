import datetime as dt

import pytest
from django.utils import timezone

from inspections.models import DefectClass
from inspections.review import selectors as review_selectors
from inspections.review.services.latest_prediction import images_latest_prediction_refresh
from inspections.review.services.reviews import review_submit
from tests.factories import InspectionImageFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def _queue_ids(filters=None) -> list[int]:
    return list(review_selectors.image_list_for_review(filters=filters).values_list("id", flat=True))


def test_needs_review_first_then_smallest_margin_then_unlabelled(predicted_image):
    crazing = DefectClass.objects.get(name="crazing")
    confident = predicted_image({"crazing": 0.9, "inclusion": 0.1})
    flagged_sure = predicted_image({"crazing": 0.8, "inclusion": 0.2}, needs_review=True)
    flagged_unsure = predicted_image({"crazing": 0.5, "inclusion": 0.45}, needs_review=True)
    unsure = predicted_image({"crazing": 0.55, "inclusion": 0.45})
    tie_labelled = predicted_image({"crazing": 0.7, "inclusion": 0.3}, label=crazing, label_source="import")
    tie_unlabelled = predicted_image({"crazing": 0.7, "inclusion": 0.3})
    never_predicted_labelled = InspectionImageFactory(label=crazing, label_source="import")
    never_predicted = InspectionImageFactory()
    assert _queue_ids() == [
        flagged_unsure.pk, flagged_sure.pk, unsure.pk, tie_unlabelled.pk, tie_labelled.pk, confident.pk,
        never_predicted.pk, never_predicted_labelled.pk,
    ]


def test_the_latest_prediction_decides_the_place(predicted_image):
    from inspections.models import Prediction

    image = predicted_image({"crazing": 0.95, "inclusion": 0.05})
    other = predicted_image({"crazing": 0.6, "inclusion": 0.4})
    newer = ModelVersionFactory()
    Prediction.objects.create(image=image, model_version=newer, label=DefectClass.objects.get(name="inclusion"),
                              confidence=0.51, probabilities={"crazing": 0.49, "inclusion": 0.51},
                              needs_review=False, ood_score=0.1, margin=0.02)
    images_latest_prediction_refresh(image_ids=[image.pk])
    assert _queue_ids() == [image.pk, other.pk]


def test_a_decision_takes_the_image_out_of_the_queue_and_the_counts(predicted_image, role_user):
    first = predicted_image({"crazing": 0.5, "inclusion": 0.5}, needs_review=True)
    predicted_image({"crazing": 0.9, "inclusion": 0.1})
    before = review_selectors.review_queue_counts()
    assert (before["left"], before["needs_review"], before["reviewed"]) == (2, 1, 0)
    review_submit(image=first, label_name="inclusion", reviewer=role_user("qa"), expected_version=0)
    after = review_selectors.review_queue_counts()
    assert (after["left"], after["needs_review"], after["reviewed"]) == (1, 0, 1)
    assert first.pk not in _queue_ids()
    assert _queue_ids({"reviewed": "reviewed"}) == [first.pk]
    assert len(_queue_ids({"reviewed": "all"})) == 2


def test_filters_by_class_source_split_version_and_dates(predicted_image):
    v1, v2 = ModelVersionFactory(), ModelVersionFactory()
    a = predicted_image({"crazing": 0.6, "inclusion": 0.4}, version=v1, source="line-1", split="train")
    b = predicted_image({"crazing": 0.3, "inclusion": 0.7}, version=v2, source="line-2", split="test")
    assert _queue_ids({"predicted_label": "inclusion"}) == [b.pk]
    assert _queue_ids({"source": "line-1"}) == [a.pk]
    assert _queue_ids({"split": "test"}) == [b.pk]
    assert _queue_ids({"model_version": v1.pk}) == [a.pk]
    type(a).objects.filter(pk=a.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    assert _queue_ids({"created_before": timezone.now() - dt.timedelta(days=5)}) == [a.pk]
    assert _queue_ids({"created_after": timezone.now() - dt.timedelta(days=5)}) == [b.pk]


def test_queue_page_lists_images_in_review_order_with_counts(client, role_user, predicted_image):
    calm = predicted_image({"crazing": 0.9, "inclusion": 0.1})
    urgent = predicted_image({"crazing": 0.5, "inclusion": 0.5}, needs_review=True)
    client.force_login(role_user("viewer"))
    html = client.get("/review/").content.decode()
    assert html.index(f'data-image-id="{urgent.pk}"') < html.index(f'data-image-id="{calm.pk}"')
    assert '<strong>2</strong> need a person' in html
    assert f'href="/review/{urgent.pk}/"' in html


def test_queue_page_filters_come_from_the_query_string(client, role_user, predicted_image):
    predicted_image({"crazing": 0.9, "inclusion": 0.1}, source="line-1")
    other = predicted_image({"crazing": 0.9, "inclusion": 0.1}, source="line-2")
    client.force_login(role_user("qa"))
    html = client.get("/review/", {"source": "line-2", "reviewed": "unreviewed"}).content.decode()
    assert html.count("data-image-id=") == 1 and f'data-image-id="{other.pk}"' in html
    assert f'href="/review/{other.pk}/?source=line-2&amp;reviewed=unreviewed"' in html


def test_counts_endpoint_answers_json(client, role_user, predicted_image):
    predicted_image({"crazing": 0.5, "inclusion": 0.5}, needs_review=True)
    client.force_login(role_user("viewer"))
    body = client.get("/review/counts/").json()
    assert body["left"] == 1 and body["needs_review"] == 1


def test_margin_migration_fills_missing_margins(predicted_image):
    import importlib

    from django.apps import apps

    from inspections.models import Prediction

    image = predicted_image({"crazing": 0.6, "inclusion": 0.3, "patches": 0.1})
    Prediction.objects.filter(image=image).update(margin=None)
    migration = importlib.import_module("inspections.migrations.0004_prediction_margin")
    migration.fill_margins(apps, None)
    assert Prediction.objects.get(image=image).margin == pytest.approx(0.3)


def test_the_queue_page_pages_through_every_image_keeping_the_filters(client, predicted_image, role_user):
    from inspections.review.pages.review import QUEUE_PAGE_SIZE

    images = [predicted_image({"crazing": 0.5 + i / 1000, "inclusion": 0.5 - i / 1000}, source="line-7")
              for i in range(QUEUE_PAGE_SIZE + 5)]
    predicted_image({"crazing": 0.5, "inclusion": 0.5}, source="line-8")
    client.force_login(role_user("qa"))
    first = client.get("/review/?source=line-7")
    assert len(first.context["images"]) == QUEUE_PAGE_SIZE
    html = first.content.decode()
    assert f"Rows 1–{QUEUE_PAGE_SIZE} of {len(images)}" in html
    assert 'href="?source=line-7&amp;page=2">Next' in html
    second = client.get("/review/?source=line-7&page=2")
    rest = [image.pk for image in second.context["images"]]
    shown = {image.pk for image in first.context["images"]} | set(rest)
    assert len(rest) == 5 and shown == {image.pk for image in images}
    html = second.content.decode()
    assert f"<td>{QUEUE_PAGE_SIZE + 1}</td>" in html and f"<td>{len(images)}</td>" in html
    assert 'href="?source=line-7&amp;page=1">← Previous' in html and "Next →" not in html
    assert f"/review/{rest[0]}/?source=line-7" in html  # each row still carries the filters to the review view
