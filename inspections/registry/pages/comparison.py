"""The comparison page: two model versions side by side (`/models/compare/?a=ID&b=ID`).

The same answer as the API's `model-versions/{a}/compare/{b}/`, drawn as tables. While the
worker computes the predictions the page says so and `static/js/compare.js` reloads it when
they are ready."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from inspections.access import roles
from inspections.api.exceptions import http_status
from inspections.errors import ApplicationError
from inspections.pages.access import found_or_404, role_required
from inspections.registry import selectors as registry_selectors
from inspections.registry.services.version_comparison import comparison_answer

read_role = role_required(roles.can_read, "Your account has no steelqc role yet; ask an administrator for one.")
PAGE_SIZE = 60


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _version(version_id: int):
    return found_or_404(registry_selectors.model_version_detail(version_id=version_id),
                        f"No model version with id {version_id}.")


def _signed(value) -> str:
    return "" if value is None else ("better" if value > 1e-9 else "worse" if value < -1e-9 else "same")


def _points(value) -> str:
    """A delta of two shares in percentage points, with its sign."""
    return "–" if value is None else f"{100 * value:+.1f} pp"


def _matrix_rows(classes: list[str], matrix: list[list[int]], *, difference: bool = False) -> list[dict]:
    rows = []
    for i, (name, counts) in enumerate(zip(classes, matrix)):
        cells = []
        for j, count in enumerate(counts):
            # In the difference a gain on the diagonal (more right) is good, off it (more wrong) bad.
            good = count > 0 if i == j else count < 0
            cells.append({"value": count, "css": "" if not difference or count == 0 else ("better" if good else "worse")})
        rows.append({"name": name, "cells": cells})
    return rows


@require_GET
@read_role
def model_version_compare(request: HttpRequest) -> HttpResponse:
    first_id, second_id = _int_param(request, "a"), _int_param(request, "b")
    if "a" not in request.GET and second_id is not None:
        # "Compare with active" links name only the other version.
        active = registry_selectors.active_model_version()
        first_id = active.pk if active else None
    page = _int_param(request, "page") or 1
    context = {"versions": registry_selectors.model_version_list(), "a": first_id, "b": second_id}
    if first_id is None or second_id is None:
        context["error"] = ("No version is active to compare with." if "a" not in request.GET and second_id is not None
                            else "Choose two versions to compare (a and b).")
        return render(request, "registry/model_version_compare.html", context,
                      status=200 if "a" not in request.GET and "b" not in request.GET else 400)
    first, second = _version(first_id), _version(second_id)
    context.update(first=first, second=second)
    try:
        body = comparison_answer(first=first, second=second, page=page, page_size=PAGE_SIZE)
    except ApplicationError as error:
        context["error"] = error.message
        return render(request, "registry/model_version_compare.html", context, status=http_status(error))
    if body["status"] == "ready":
        for row in body["per_class"]:
            row["css"] = {m: _signed(v) for m, v in (row["delta"] or {}).items()}
            row["text"] = {m: _points(v) for m, v in (row["delta"] or {}).items()}
        body["accuracy"]["css"] = _signed(body["accuracy"]["delta"])
        body["accuracy"]["text"] = _points(body["accuracy"]["delta"])
        matrices = body["confusion_matrices"]
        context["matrices"] = [
            (first.name, _matrix_rows(body["classes"], matrices["first"])),
            (second.name, _matrix_rows(body["classes"], matrices["second"])),
            (f"{second.name} − {first.name}", _matrix_rows(body["classes"], matrices["difference"], difference=True)),
        ]
        pages = (body["disagreements"]["count"] + PAGE_SIZE - 1) // PAGE_SIZE
        context["pages"] = {"number": page, "count": pages, "previous": page - 1 if page > 1 else None,
                            "next": page + 1 if page < pages else None}
    context["comparison"] = body
    return render(request, "registry/model_version_compare.html", context)
