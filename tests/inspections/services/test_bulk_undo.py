"""Undoing a bulk decision: one more append-only review per image (decision ``undo``, naming the
review it takes back), each image back to the state the decision found it in; an image decided
again since is left as it is; a decision is undone once, and only by the person who made it."""

from __future__ import annotations

import pytest

from inspections.catalog.services.suspects import suspect_labels_flag
from inspections.errors import ApplicationError
from inspections.models import DefectClass, InspectionImage, Review
from inspections.review import selectors as review_selectors
from inspections.review.services.bulk_reviews import reviews_bulk_submit, reviews_bulk_undo
from inspections.review.services.reviews import review_submit
from tests.factories import InspectionImageFactory, PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def qa():
    return UserFactory(roles=["qa"])


def _bulk(images, reviewer, **decision) -> list:
    return reviews_bulk_submit(items=[(image.pk, image.label_version) for image in images], reviewer=reviewer,
                               **decision)


def _queue_ids() -> set[int]:
    return set(review_selectors.image_list_for_review().values_list("id", flat=True))


def test_an_undone_label_puts_unlabelled_and_imported_suspect_images_back_as_they_were(qa):
    crazing = DefectClass.objects.get(name="crazing")
    unlabelled = InspectionImageFactory()
    PredictionFactory(image=unlabelled, needs_review=True)
    suspect = InspectionImageFactory(label=crazing, label_source="import", split="train")
    PredictionFactory(image=suspect)
    suspect_labels_flag(image_ids=[suspect.pk], flagged=[
        {"image_id": suspect.pk, "label": "crazing", "suggested_label": "inclusion", "score": 0.8, "issue": True}])
    suspect.refresh_from_db()
    before = {image.pk: InspectionImage.objects.filter(pk=image.pk).values(
        "label", "label_source", "excluded", "suspect_suggestion", "suspect_score", "needs_attention").get()
        for image in (unlabelled, suspect)}
    decided = _bulk([unlabelled, suspect], qa, label_name="scratches")
    assert not _queue_ids() & {unlabelled.pk, suspect.pk}

    outcomes = reviews_bulk_undo(bulk_id=decided[0].review.bulk_id, reviewer=qa)

    assert [outcome.error for outcome in outcomes] == [None, None]
    for image in (unlabelled, suspect):
        after = InspectionImage.objects.filter(pk=image.pk).values(*before[image.pk]).get()
        assert after == before[image.pk]
        assert InspectionImage.objects.get(pk=image.pk).label_version == 2
        label, undo = Review.objects.filter(image=image).order_by("id")
        assert (undo.decision, undo.undoes, undo.reviewer, undo.previous_label.name) == ("undo", label, qa, "scratches")
        assert undo.label_id == before[image.pk]["label"]
    assert _queue_ids() >= {unlabelled.pk, suspect.pk}
    last = review_selectors.bulk_decision_last(reviewer=qa)
    assert (last["count"], last["label"], last["undone_at"] is not None) == (2, "scratches", True)


def test_an_undone_exclusion_includes_the_images_again(qa):
    images = [InspectionImageFactory(), InspectionImageFactory()]
    decided = _bulk(images, qa, exclude=True, reason="test shots")
    reviews_bulk_undo(bulk_id=decided[0].review.bulk_id, reviewer=qa)
    assert list(InspectionImage.objects.filter(pk__in=[i.pk for i in images]).values_list("excluded", "exclusion_reason")
                ) == [(False, ""), (False, "")]


def test_an_image_decided_again_since_is_left_as_it_is(qa):
    kept, undone = InspectionImageFactory(), InspectionImageFactory()
    decided = _bulk([kept, undone], qa, label_name="patches")
    review_submit(image=kept, label_name="inclusion", reviewer=UserFactory(roles=["qa"]), expected_version=1)
    outcomes = reviews_bulk_undo(bulk_id=decided[0].review.bulk_id, reviewer=qa)
    assert [(o.image_id, o.error.code if o.error else None) for o in outcomes] == [(kept.pk, "decided_since"),
                                                                                    (undone.pk, None)]
    assert InspectionImage.objects.get(pk=kept.pk).label.name == "inclusion"
    assert InspectionImage.objects.get(pk=undone.pk).label is None


def test_a_bulk_decision_is_undone_once_and_only_by_its_maker(qa):
    decided = _bulk([InspectionImageFactory()], qa, label_name="patches")
    bulk_id = decided[0].review.bulk_id
    with pytest.raises(ApplicationError) as other:
        reviews_bulk_undo(bulk_id=bulk_id, reviewer=UserFactory(roles=["qa"]))
    assert other.value.code == "permission_denied"
    reviews_bulk_undo(bulk_id=bulk_id, reviewer=qa)
    with pytest.raises(ApplicationError) as again:
        reviews_bulk_undo(bulk_id=bulk_id, reviewer=qa)
    assert again.value.code == "already_undone"
    assert Review.objects.filter(decision="undo").count() == 1
