"""Reads of the review domain."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast, TruncDay, TruncHour
from django.db.models.lookups import Contains
from django.utils import timezone

from inspections.catalog.models import (
    REVIEW_QUEUE_ORDER,
    UNLABELLED_FIRST,
    UNREVIEWED,
    BoxAction,
    DefectBoxChange,
    ImageStatus,
    InspectionImage,
    LabelSource,
)
from inspections.registry.models import ModelVersionKind, ModelVersionStatus
from inspections.review.models import Prediction, Review
from mlcore.artefact import REASON_SUSPECT_LABEL

# --- Images, predictions and reviews (the API's reads) ---------------------------------------

def _latest_predictions_prefetch() -> Prefetch:
    return Prefetch(
        "predictions",
        queryset=Prediction.objects.select_related("label", "model_version", "anomaly_version")
        .order_by("-created_at", "-id"),
        to_attr="predictions_latest_first",
    )


def image_list(*, filters: dict | None = None) -> QuerySet[InspectionImage]:
    """Images, newest first, with the latest prediction prefetched, under ``filters`` (see
    ``_images_filtered``: the same filters, with the same meaning, as the review queue's).
    ``order``: ``anomaly`` puts the highest anomaly score first (newest first among equals, images
    without a score last)."""
    filters = filters or {}
    images = InspectionImage.objects.select_related("label", "uploaded_by", "suspect_suggestion").prefetch_related(
        _latest_predictions_prefetch()
    )
    newest = (F("created_at").desc(), F("id").desc())
    order = (HIGHEST_ANOMALY_FIRST, *newest) if filters.get("order") == ANOMALY_ORDER else newest
    return _images_filtered(images, filters).order_by(*order)


def _images_filtered(images: QuerySet[InspectionImage], filters: dict) -> QuerySet[InspectionImage]:
    """Apply the image filters of the API list and the review queue; each key is optional.

    ``status``, ``split``, ``source``, ``external_id``, ``excluded``: exact values. ``label``: the current
    label's class name (``""``: unlabelled). ``reviewed``: ``reviewed`` (a person decided),
    ``unreviewed`` or ``all``. ``created_after`` / ``created_before``: datetimes, inclusive.
    Prediction filters look at the image's *latest* prediction only — the one users see:
    ``model_version`` (id of the version that made it), ``predicted_label`` (its class name),
    ``needs_review`` (its flag). An image without a prediction matches none of them. ``q``: a
    search (``image_search``).
    """
    def given(key: str) -> bool:
        return filters.get(key) not in (None, "")

    exact = {key: filters[key] for key in ("status", "split", "source", "external_id", "excluded") if given(key)}
    images = images.filter(**exact)
    if "label" in filters and filters["label"] is not None:
        images = images.filter(label__isnull=True) if filters["label"] == "" else images.filter(label__name=filters["label"])
    reviewed = filters.get("reviewed") or "all"
    # A suspect label waits for a person even when a person set it: it counts as not reviewed.
    suspect = Q(suspect_suggestion__isnull=False)
    if reviewed == "unreviewed":
        images = images.filter(UNREVIEWED)
    elif reviewed == "reviewed":
        images = images.filter(Q(label_source=LabelSource.REVIEW) & ~suspect)
    # The latest prediction's facts are kept on the image (services.latest_prediction).
    latest = {"model_version": "latest_model_version_id", "predicted_label": "latest_label__name",
              "needs_review": "latest_needs_review"}
    for key, field in latest.items():
        if given(key):
            images = images.filter(**{field: filters[key]})
    if given("review_reason"):
        if filters["review_reason"] == REASON_SUSPECT_LABEL:
            images = images.filter(suspect)
        else:
            images = images.filter(_has_review_reason(filters["review_reason"]))
    if given("q") and filters["q"].strip():
        images = images.filter(image_search(filters["q"]))
    if given("created_after"):
        images = images.filter(created_at__gte=filters["created_after"])
    if given("created_before"):
        images = images.filter(created_at__lte=filters["created_before"])
    return images


def image_search(text: str) -> Q:
    """What the search box (``?q=``, the review queue's and ``GET images/``'s) finds: images whose
    file name or external id contains ``text`` (case-insensitive), and, when ``text`` is a whole
    number, the image with that id."""
    text = text.strip()
    found = Q(original_name__icontains=text) | Q(external_id__icontains=text)
    if text.isdecimal() and len(text) < 19:  # larger than any id column
        found |= Q(pk=int(text))
    return found


def _has_review_reason(code: str):
    """The latest prediction lists ``code`` among its review reasons. Matched on the JSON text
    (``"code"`` with its quotes), which works the same on PostgreSQL and SQLite."""
    return Contains(Cast("latest_review_reasons", TextField()), f'"{code}"')


def image_detail(*, image_id: int) -> InspectionImage | None:
    """One image with its latest prediction and its review history (newest first)."""
    reviews = Review.objects.select_related("label", "previous_label", "reviewer").order_by("-created_at", "-id")
    return (
        InspectionImage.objects.select_related("label", "uploaded_by", "suspect_suggestion")
        .prefetch_related(_latest_predictions_prefetch(), Prefetch("reviews", queryset=reviews, to_attr="reviews_latest_first"))
        .filter(pk=image_id)
        .first()
    )


def image_latest_prediction(*, image: InspectionImage) -> Prediction | None:
    prefetched = getattr(image, "predictions_latest_first", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return (
        Prediction.objects.select_related("label", "model_version", "anomaly_version")
        .filter(image=image)
        .order_by("-created_at", "-id")
        .first()
    )


def bulk_decision_last(*, reviewer) -> dict | None:
    """``reviewer``'s last bulk decision (the look-alike groups page offers to undo it), or None:
    its ``bulk_id``, ``decision``, ``label`` (class name), ``reason``, how many images it decided
    (``count``), ``created_at``, and ``undone_at`` (None while it stands)."""
    latest = (Review.objects.filter(reviewer=reviewer, bulk_id__isnull=False).select_related("label")
              .order_by("-created_at", "-id").first())
    if latest is None:
        return None
    return {
        "bulk_id": latest.bulk_id, "decision": latest.decision, "label": latest.label.name if latest.label else None,
        "reason": latest.reason, "count": Review.objects.filter(bulk_id=latest.bulk_id).count(),
        "created_at": latest.created_at,
        "undone_at": Review.objects.filter(undoes__bulk_id=latest.bulk_id).aggregate(at=Max("created_at"))["at"],
    }


def review_list_for_image(*, image: InspectionImage) -> QuerySet[Review]:
    return Review.objects.filter(image=image).select_related("label", "previous_label", "reviewer").order_by(
        "-created_at", "-id"
    )


def box_prediction_for_image(*, image: InspectionImage) -> Prediction | None:
    """The image's prediction by the version in service (the one whose boxes the review view offers), or None."""
    return (Prediction.objects.filter(image=image, model_version__status=ModelVersionStatus.ACTIVE,
                                      model_version__kind=ModelVersionKind.CLASSIFIER)
            .select_related("model_version").order_by("-created_at", "-id").first())


def box_accepted_from_model(*, image: InspectionImage, model_version_id: int) -> list[dict]:
    """What people accepted of that version's boxes on the image: the ``after`` ({label, box, from_model})
    of each drawn change that names it, whatever became of the box since."""
    return list(DefectBoxChange.objects.filter(image=image, action=BoxAction.DRAWN,
                                               after__from_model=model_version_id).values_list("after", flat=True))


# --- Review queue (the browser workspace) -----------------------------------------------------

def _queue_key(order) -> tuple[str, bool, bool]:
    """(name, ascending, nullable) of one key of REVIEW_QUEUE_ORDER; the expression key is
    annotated as ``unlabelled_first`` where the keyset reads need it by name."""
    if isinstance(order.expression, F):
        name = order.expression.name
        return name, not order.descending, InspectionImage._meta.get_field(name).null
    return "unlabelled_first", not order.descending, False


# ?order=anomaly: the images the anomaly model finds least like good steel first (index
# image_anomaly_score), then the queue's own order; images without a score after every scored one.
ANOMALY_ORDER = "anomaly"
HIGHEST_ANOMALY_FIRST = F("latest_anomaly_score").desc(nulls_last=True)  # images without a score last
ANOMALY_QUEUE_ORDER = (HIGHEST_ANOMALY_FIRST, *REVIEW_QUEUE_ORDER)


def _queue_order(filters: dict | None = None) -> list:
    return list(ANOMALY_QUEUE_ORDER if (filters or {}).get("order") == ANOMALY_ORDER else REVIEW_QUEUE_ORDER)


def _queue_keys(filters: dict | None = None) -> tuple[tuple[str, bool, bool], ...]:
    return tuple(_queue_key(order) for order in _queue_order(filters))


def _review_queue_base(filters: dict) -> QuerySet[InspectionImage]:
    # An excluded image is not an inspection image: it never waits for a decision.
    images = (InspectionImage.objects.select_related("label", "suspect_suggestion", "latest_label")
              .filter(excluded=False))
    return _images_filtered(images, {**filters, "reviewed": filters.get("reviewed") or "unreviewed"})


def image_list_for_review(*, filters: dict | None = None) -> QuerySet[InspectionImage]:
    """The review queue, in the order a human should look at the images.

    First the images whose latest prediction asked for review (``needs_review``) or whose label
    is suspect, then the most uncertain ones (smallest margin between the two most probable
    classes), then unlabelled before labelled, oldest first. Images without a prediction come
    after every predicted one. The keys are columns of the image (``needs_attention``,
    ``latest_margin``: services.latest_prediction keeps them), so page 1 of the waiting images
    is a read of the partial index ``image_review_queue``.

    ``filters``: those of ``image_list`` (``_images_filtered``); ``reviewed`` defaults to
    ``unreviewed`` here. ``order``: ``anomaly`` puts the highest anomaly score first.
    """
    return (_review_queue_base(filters or {}).annotate(latest_confidence=F("latest_prediction__confidence"))
            .order_by(*_queue_order(filters)))


def review_queue_counts(*, filters: dict | None = None) -> dict:
    """What is left to review under ``filters`` (whatever their ``reviewed`` value says), in the
    two kinds every page shows apart, with the same words (templates/inspections/_queue_counts.html):

    - ``need_person``: images only a person can settle: flagged by the model (``needs_review``),
      with a suspect label, or unlabelled;
    - ``unconfirmed``: labelled images (a dataset import's label) that no person has confirmed and
      the model did not flag.

    ``left`` is both together (the queue's length); ``flagged`` (flagged by the model, label not
    suspect), ``suspect_label``, ``unlabelled`` and ``without_prediction`` break them down, and
    ``needs_review`` is ``flagged`` plus ``suspect_label`` (the queue's first key). An image may be
    flagged and unlabelled: the breakdown may add up to more than ``need_person``.

    Exact counts. Without filters they are one index-only scan of ``image_review_queue`` (its
    entries are the waiting images and it carries the columns counted) and one of ``image_reviewed``:
    about 2 s for 8 million waiting images on a 2-core machine (docs/benchmarks.md, bench-tables).
    """
    left = _review_queue_base({**(filters or {}), "reviewed": "unreviewed"})
    suspect = Q(suspect_suggestion__isnull=False)
    counts = left.order_by().aggregate(
        left=Count("id"),
        need_person=Count("id", filter=Q(needs_attention=True) | Q(label__isnull=True)),
        needs_review=Count("id", filter=Q(needs_attention=True)),
        flagged=Count("id", filter=Q(needs_attention=True) & ~suspect),
        suspect_label=Count("id", filter=suspect),
        unlabelled=Count("id", filter=Q(label__isnull=True)),
        without_prediction=Count("id", filter=Q(latest_prediction__isnull=True)),
    )
    counts["unconfirmed"] = counts["left"] - counts["need_person"]
    counts["reviewed"] = InspectionImage.objects.filter(label_source=LabelSource.REVIEW).count()
    return counts


def review_queue_neighbours(*, image_id: int, filters: dict | None = None, window: int = 5000) -> dict:
    """The images before and after ``image_id`` in the queue, and its 1-based position.

    When the image is not (or no longer) in the queue, ``next`` is the queue's first image.
    Keyset reads: each neighbour is the first entry of one range of the queue's index next to the
    image's key (a handful of one-row index reads, wherever the image is); the position counts
    the entries before it, up to ``window`` (beyond that it is None).
    """
    queue = _review_queue_base(filters or {}).annotate(unlabelled_first=UNLABELLED_FIRST)
    order, keys = _queue_order(filters), _queue_keys(filters)
    key = queue.filter(pk=image_id).values_list(*(name for name, _, _ in keys)).first()
    if key is None:
        return {"previous": None, "next": _first(queue, order, reverse=False), "position": None}
    following = next((found for rng in _ranges(key, keys, after=True)
                      if (found := _first(queue.filter(rng), order, reverse=False)) is not None), None)
    preceding = next((found for rng in _ranges(key, keys, after=False)
                      if (found := _first(queue.filter(rng), order, reverse=True)) is not None), None)
    before = 0
    for rng in _ranges(key, keys, after=False):
        if before >= window:
            break
        before += queue.filter(rng).order_by()[: window - before].count()
    return {"previous": preceding, "next": following, "position": before + 1 if before < window else None}


def _first(queryset: QuerySet[InspectionImage], order: list, *, reverse: bool) -> int | None:
    ordered = queryset.order_by(*order)
    return (ordered.reverse() if reverse else ordered).values_list("id", flat=True).first()


def _ranges(key: tuple, keys: tuple, *, after: bool) -> list[Q]:
    """The queue entries after (or before) ``key``, as ranges of the queue's index, nearest first:
    equal on the first n keys and beyond on key n+1, for n from the last key down to 0. Each range
    is one index condition (a column comparison, IS NULL or IS NOT NULL), so its first entry is a
    one-row read."""
    ranges = []
    for depth in range(len(keys) - 1, -1, -1):
        equal = Q()
        for (name, _, _), value in zip(keys[:depth], key[:depth]):
            equal &= Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})
        name, ascending, nullable = keys[depth]
        beyond = _beyond(name, key[depth], ascending=ascending, nullable=nullable, after=after)
        ranges += [equal & condition for condition in beyond]
    return ranges


def _beyond(name: str, value, *, ascending: bool, nullable: bool, after: bool) -> list[Q]:
    """Conditions for the values of one key strictly after (or before) ``value`` in queue order,
    nearest first. Nulls sort last whatever the direction."""
    if after:
        if value is None:
            return []
        nulls = [Q(**{f"{name}__isnull": True})] if nullable else []
        return [Q(**{f"{name}__{'gt' if ascending else 'lt'}": value})] + nulls
    if value is None:
        return [Q(**{f"{name}__isnull": False})]
    return [Q(**{f"{name}__{'lt' if ascending else 'gt'}": value})]


def review_queue_sources() -> list[str]:
    return list(InspectionImage.objects.exclude(source="").order_by("source").values_list("source", flat=True).distinct())


def reviews_per_hour(*, hours: int = 24, now=None) -> list[tuple]:
    """(hour start, number of review decisions) for the last ``hours`` hours, oldest first, gaps as 0."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    rows = dict(
        Review.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(hour=TruncHour("created_at")).values("hour").annotate(n=Count("id")).values_list("hour", "n")
    )
    return [(start + timedelta(hours=i), rows.get(start + timedelta(hours=i), 0)) for i in range(hours)]


def prediction_trend(*, days: int = 30, now=None) -> list[dict]:
    """Per time bucket: predictions made, the share flagged ``needs_review`` and the mean confidence.

    Buckets are hours when every prediction of the period falls within two days, else days.
    """
    now = now or timezone.now()
    predictions = Prediction.objects.filter(created_at__gte=now - timedelta(days=days))
    span = predictions.aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None:
        return []
    hourly = span["last"] - span["first"] <= timedelta(days=2)
    bucket = TruncHour("created_at") if hourly else TruncDay("created_at")
    rows = (
        predictions.annotate(bucket=bucket).values("bucket")
        .annotate(n=Count("id"), flagged=Count("id", filter=Q(needs_review=True)), confidence=Avg("confidence"))
        .order_by("bucket")
    )
    return [
        {"start": row["bucket"], "count": row["n"], "needs_review_share": row["flagged"] / row["n"],
         # None in a bucket of an anomaly model's answers alone (no class, so no confidence).
         "mean_confidence": None if row["confidence"] is None else float(row["confidence"]),
         "unit": "hour" if hourly else "day"}
        for row in rows
    ]


def images_finished(*, image_ids: list[int]) -> set[int]:
    """Which of the images have a prediction or failed inference (one query)."""
    has_prediction = Exists(Prediction.objects.filter(image=OuterRef("pk")))
    return set(
        InspectionImage.objects.filter(pk__in=image_ids)
        .annotate(done=has_prediction)
        .filter(Q(done=True) | Q(status=ImageStatus.FAILED))
        .values_list("pk", flat=True)
    )
