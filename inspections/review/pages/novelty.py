"""The look-alike groups page: the images the active model flagged foreign, grouped, largest
first, so a QA person names a whole group at once (the page's script posts to reviews/bulk/ after a
confirmation that says how many images), each group's class menu set to the model's most frequent
guess; and undoing the person's last bulk decision (``novelty_bulk_undo``)."""

from __future__ import annotations

from uuid import UUID

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from inspections.access import roles
from inspections.api.exceptions import http_status
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.models import NO_DEFECT_CLASS
from inspections.errors import ApplicationError, error_body
from inspections.registry import selectors as registry_selectors
from inspections.review import selectors as review_selectors
from inspections.review.pages.review import label_role, queue_role
from inspections.review.services.bulk_reviews import reviews_bulk_undo
from inspections.review.services.similarity import novelty_groups

GROUPS_PER_PAGE = 20


@require_GET
@never_cache
@queue_role
def novelty_group_list(request: HttpRequest) -> HttpResponse:
    active = registry_selectors.active_model_version()
    groups = novelty_groups(version=active) if active else []
    page = Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    classes = list(catalog_selectors.defect_class_list().filter(active=True))
    classes.sort(key=lambda c: (c.name != NO_DEFECT_CLASS, c.name))
    names = {c.name for c in classes}
    for group in page.object_list:
        group.members = ",".join(f"{m['id']}:{m['label_version']}" for m in group.images)
        group.more = group.size - len(group.representatives)
        # predicted_labels is most frequent first: the menu starts at the model's majority guess.
        group.majority = next((name for name in group.predicted_labels if name in names), None)
    can_label = roles.can_label(request.user)
    return render(request, "inspections/novelty_groups.html", {
        "active_version": active,
        "page": page,
        "groups": page.object_list,
        "group_count": len(groups),
        "image_count": sum(group.size for group in groups),
        "classes": classes,
        "can_label": can_label,
        "last_bulk": review_selectors.bulk_decision_last(reviewer=request.user) if can_label else None,
    })


@require_POST
@label_role
def novelty_bulk_undo(request: HttpRequest) -> JsonResponse:
    """Undo the person's bulk decision ``bulk_id`` (form field): one undo review per image."""
    try:
        bulk_id = UUID(request.POST.get("bulk_id", ""))
    except ValueError:
        return JsonResponse(error_body("invalid", "bulk_id: the id of a bulk decision."), status=400)
    try:
        outcomes = reviews_bulk_undo(bulk_id=bulk_id, reviewer=request.user)
    except ApplicationError as error:
        return JsonResponse(error_body(error.code, error.message, error.details), status=http_status(error))
    return JsonResponse({
        "undone": sum(1 for outcome in outcomes if outcome.error is None),
        "failed": [{"image": outcome.image_id, "message": outcome.error.message}
                   for outcome in outcomes if outcome.error is not None],
    })
