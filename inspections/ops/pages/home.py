"""The start page: what is in the system, for anyone with a role."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from inspections.access import roles
from inspections.catalog import selectors as catalog_selectors
from inspections.pages.access import role_required


@require_GET
@role_required(roles.can_read, "Your account has no steelqc role yet; ask an administrator for one.")
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "inspections/home.html", {"summary": catalog_selectors.dataset_summary()})
