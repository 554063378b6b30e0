"""The look-alike groups page: the images the active model flagged foreign, grouped, largest
first, so a QA person names a whole group at once (the page's script posts to reviews/bulk/)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from inspections.access import roles
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.models import NO_DEFECT_CLASS
from inspections.registry import selectors as registry_selectors
from inspections.review.pages.review import queue_role
from inspections.review.services.similarity import novelty_groups

GROUPS_PER_PAGE = 20


@require_GET
@never_cache
@queue_role
def novelty_group_list(request: HttpRequest) -> HttpResponse:
    active = registry_selectors.active_model_version()
    groups = novelty_groups(version=active) if active else []
    page = Paginator(groups, GROUPS_PER_PAGE).get_page(request.GET.get("page"))
    for group in page.object_list:
        group.members = ",".join(f"{m['id']}:{m['label_version']}" for m in group.images)
        group.more = group.size - len(group.representatives)
    classes = list(catalog_selectors.defect_class_list().filter(active=True))
    classes.sort(key=lambda c: (c.name != NO_DEFECT_CLASS, c.name))
    return render(request, "inspections/novelty_groups.html", {
        "active_version": active,
        "page": page,
        "groups": page.object_list,
        "group_count": len(groups),
        "image_count": sum(group.size for group in groups),
        "classes": classes,
        "can_label": roles.can_label(request.user),
    })
