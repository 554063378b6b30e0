"""The review queue, the review view of one image, its heatmap and anomaly map, and the no-JavaScript decision form."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from inspections.access import roles
from inspections.api.exceptions import http_status
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.models import NO_DEFECT_CLASS
from inspections.errors import ApplicationError
from inspections.pages.access import can_review_queue, found_or_404, role_required
from inspections.registry import selectors as registry_selectors
from inspections.review import selectors as review_selectors
from inspections.review.pages.forms import QueueFilterForm, ReviewDecisionForm, filter_query
from inspections.review.reasons import image_explanation
from inspections.review.models import ReviewDecision
from inspections.review.services.reviews import (
    review_exclude,
    review_include,
    review_may_undo,
    review_submit,
    review_undo_by_id,
)

QUEUE_PAGE_SIZE = 50
NO_DEFECT_KEY = "0"
# Defect classes in name order take 1..9, then these letters (none of them is a command key:
# A, B and E are the defect boxes' keys, M the anomaly map's).
CLASS_KEYS = "123456789cdfgijkloptuvwyz"
queue_role = role_required(can_review_queue, "The review queue needs the role qa, ml_admin or viewer.")
label_role = role_required(roles.can_label, "Labelling needs the role qa or ml_admin.")


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


@require_GET
@queue_role
def review_queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    filters = form.selector_filters() if form.is_bound else {"reviewed": "unreviewed"}
    query = filter_query(request.GET)
    counts = review_selectors.review_queue_counts(filters=filters)
    paginator = Paginator(review_selectors.image_list_for_review(filters=filters), QUEUE_PAGE_SIZE)
    if (filters.get("reviewed") or "unreviewed") == "unreviewed":
        paginator.count = counts["left"]  # the same images: counted once, not twice
    page = paginator.get_page(request.GET.get("page"))
    images = list(page.object_list)
    for image in images:
        image.review_url = _with_query(reverse("inspections:review-image", args=[image.pk]), query)
    return render(request, "inspections/review_queue.html", {
        "form": form,
        "images": images,
        "counts": counts,
        "query": query,
        "page": page,
        "start_url": images[0].review_url if images else None,
    })


@require_GET
@queue_role
def review_queue_counts(request: HttpRequest) -> JsonResponse:
    form = QueueFilterForm(request.GET or None)
    filters = form.selector_filters() if form.is_bound else {"reviewed": "unreviewed"}
    return JsonResponse(review_selectors.review_queue_counts(filters=filters))


def _review_context(request: HttpRequest, image, *, conflict: dict | None = None) -> dict:
    form = QueueFilterForm(request.GET or None)
    filters = form.selector_filters() if form.is_bound else {"reviewed": "unreviewed"}
    query = filter_query(request.GET)
    prediction = review_selectors.image_latest_prediction(image=image)
    neighbours = review_selectors.review_queue_neighbours(image_id=image.pk, filters=filters)
    active = registry_selectors.active_model_version()
    # Each class carries its readiness: a collecting one says how many more labels it needs.
    classes = catalog_selectors.defect_classes_with_readiness(
        classes=catalog_selectors.defect_class_list().filter(active=True))
    no_defect = [c for c in classes if c.name == NO_DEFECT_CLASS]
    classes = no_defect + [c for c in classes if c.name != NO_DEFECT_CLASS]
    keys = iter(CLASS_KEYS)
    for defect_class in classes:
        defect_class.key = NO_DEFECT_KEY if defect_class.name == NO_DEFECT_CLASS else next(keys, "")
    probabilities = []
    if prediction:
        probabilities = sorted(prediction.probabilities.items(), key=lambda item: item[1], reverse=True)
    next_image = neighbours["next"]
    history = list(getattr(image, "reviews_latest_first", None) or review_selectors.review_list_for_image(image=image))
    return {
        "image": image,
        "prediction": prediction,
        "probabilities": probabilities,
        "explanation": image_explanation(image, prediction),
        "classes": classes,
        "last_key": next((c.key for c in reversed(classes) if c.key and c.key != NO_DEFECT_KEY), ""),
        "has_no_defect": bool(no_defect),
        "history": history,
        # The image's latest decision, when this person may take it back (the history's Undo button).
        "undoable": _undoable(history[0] if history else None, request.user),
        "counts": review_selectors.review_queue_counts(filters=filters),
        "position": neighbours["position"],
        "next_url": _with_query(reverse("inspections:review-image", args=[next_image]), query) if next_image else None,
        "next_file_url": reverse("inspections:api:image-file", args=[next_image]) if next_image else None,
        "previous_url": (_with_query(reverse("inspections:review-image", args=[neighbours["previous"]]), query)
                         if neighbours["previous"] else None),
        "queue_url": _with_query(reverse("inspections:review-queue"), query),
        "counts_url": _with_query(reverse("inspections:review-counts"), query),
        "heatmap_url": reverse("inspections:image-heatmap", args=[image.pk]) if active else None,
        "anomaly_map_url": (reverse("inspections:image-anomaly-map", args=[image.pk])
                            if prediction and prediction.anomaly_version_id else None),
        "active_version": active,
        "can_label": roles.can_label(request.user),
        "can_add_class": roles.can_label(request.user),
        "conflict": conflict,
        "query": query,
    }


def _undoable(review, user):
    if review is None or review.decision == ReviewDecision.UNDO or "label_version" not in review.previous_state:
        return None
    return review if review_may_undo(review=review, user=user) else None


@require_GET
@never_cache
@queue_role
def review_image(request: HttpRequest, image_id: int) -> HttpResponse:
    image = found_or_404(review_selectors.image_detail(image_id=image_id), f"No image with id {image_id}.")
    return render(request, "inspections/review_image.html", _review_context(request, image))


@require_POST
@label_role
def review_decide(request: HttpRequest, image_id: int) -> HttpResponse:
    """The form fallback of the review view (the page's script posts to the API instead)."""
    image = found_or_404(review_selectors.image_detail(image_id=image_id), f"No image with id {image_id}.")
    form = ReviewDecisionForm(request.POST)
    form.is_valid()  # every field is optional; the service checks the label
    decision = form.cleaned_data
    try:
        if decision.get("exclude") == "true":
            review = review_exclude(image=image, reviewer=request.user, reason=decision.get("reason", ""),
                                    expected_version=decision.get("expected_version"))
            done = f"excluded ({review.reason})"
        elif decision.get("exclude") == "false":
            review_include(image=image, reviewer=request.user, expected_version=decision.get("expected_version"))
            done = "included again"
        else:
            review = review_submit(image=image, label_name=decision.get("label", ""), reviewer=request.user,
                                   expected_version=decision.get("expected_version"))
            done = f"labelled {review.label.name}"
    except ApplicationError as error:
        fresh = review_selectors.image_detail(image_id=image_id)
        context = _review_context(request, fresh, conflict={"message": error.message, "code": error.code})
        return render(request, "inspections/review_image.html", context, status=http_status(error))
    # The page that follows says it was saved, in the words of the script's note (static/js/review.js).
    messages.success(request, f"Saved: image {image.pk} {done}.")
    return redirect(decision.get("next") or reverse("inspections:review-queue"))


@require_POST
@label_role
def review_undo(request: HttpRequest, image_id: int, review_id: int) -> HttpResponse:
    """Take back one of the image's decisions (the history's Undo button), then show the image again."""
    back = _with_query(reverse("inspections:review-image", args=[image_id]), filter_query(request.GET))
    review = review_selectors.review_list_for_image(image=image_id).filter(pk=review_id).first()
    if review is None:
        raise Http404(f"Image {image_id} has no review {review_id}.")
    try:
        undo = review_undo_by_id(review_id=review.pk, reviewer=request.user)
    except ApplicationError as error:
        messages.error(request, f"Not undone: {error.message}")
        return redirect(back)
    messages.success(request, f"Undone: image {image_id} is back to {undo.label.name if undo.label else 'unlabelled'}.")
    return redirect(back)


@require_GET
@queue_role
def image_heatmap(request: HttpRequest, image_id: int) -> HttpResponse:
    from inspections.review.pages.heatmaps import heatmap_png

    image = review_selectors.image_detail(image_id=image_id)
    version = registry_selectors.active_model_version()
    if image is None or version is None:
        raise Http404("No such image, or no active model version to explain.")
    class_name = request.GET.get("class") or None
    if class_name is None:
        # The class this version predicted; with a prediction from another version, the
        # active model's own top class (heatmap_png's default).
        prediction = review_selectors.image_latest_prediction(image=image)
        if prediction and prediction.model_version_id == version.pk and prediction.label_id:
            class_name = prediction.label.name
    response = HttpResponse(heatmap_png(image=image, version=version, class_name=class_name),
                            content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@queue_role
def image_anomaly_map(request: HttpRequest, image_id: int) -> HttpResponse:
    """Where the image is unlike good steel, by the anomaly model that scored its latest prediction."""
    from inspections.review.pages.anomaly_maps import anomaly_map_png

    image = review_selectors.image_detail(image_id=image_id)
    prediction = review_selectors.image_latest_prediction(image=image) if image else None
    if prediction is None or prediction.anomaly_version_id is None:
        raise Http404("No such image, or no anomaly model scored it.")
    response = HttpResponse(anomaly_map_png(image=image, version=prediction.anomaly_version), content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
