"""The version page's threshold editors. "Decision thresholds": per class the threshold, its
validation curve (an SVG drawn here, the chosen point marked) and, below, the change history;
``static/js/thresholds.js`` only moves the marker while a value is typed. "Box thresholds": per
class the score below which the model's boxes are hidden in the review view, and its history.
Saving either posts a plain form (ml_admin only, checked here)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from inspections.access import roles
from inspections.errors import ApplicationError
from inspections.pages.access import found_or_404, role_required
from inspections.pages.charts import HEIGHT, LEFT, RIGHT, TOP, WIDTH, _axes, _y
from inspections.registry import selectors as registry_selectors
from inspections.registry.models import ThresholdKind
from inspections.registry.services.thresholds import (
    threshold_history,
    version_box_thresholds,
    version_box_thresholds_set,
    version_thresholds,
    version_thresholds_set,
)

FIELD_PREFIX = "threshold-"
BOX_FIELD_PREFIX = "box-threshold-"
HISTORY_ROWS = 50

model_admin_role = role_required(roles.can_manage_models, "Changing thresholds needs the role ml_admin.")


def _x(threshold: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * threshold


def curve_chart(*, name: str, curve: dict, threshold: float) -> SafeString:
    """Precision of the auto-accepted predictions and the share auto-accepted, against the
    threshold (x 0..1, y 0..100 %), with a vertical marker at ``threshold``."""
    title = f"{name}: precision and share auto-accepted against the threshold"
    parts = [f'<svg class="chart threshold-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" data-left="{LEFT}" data-span="{WIDTH - LEFT - RIGHT}">',
             f"<title>{escape(title)}</title>", *_axes("100%")]
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text class="tick" x="{_x(tick):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{tick:g}</text>')
    for key, label, css in (("precision", "precision", "series-precision"),
                            ("auto_accept", "auto-accepted", "series-accept")):
        points = [(t, v) for t, v in zip(curve["thresholds"], curve[key]) if v is not None]
        if points:
            line = " ".join(f"{_x(t):.1f},{_y(v, 1.0):.1f}" for t, v in points)
            parts.append(f'<polyline class="{css}" fill="none" points="{line}"><title>{label}</title></polyline>')
    parts.append(f'<line class="threshold-marker" x1="{_x(threshold):.1f}" y1="{TOP}" x2="{_x(threshold):.1f}" '
                 f'y2="{HEIGHT - 26}"><title>chosen threshold {threshold:g}</title></line>')
    parts.append("</svg>")
    # Safe: every interpolated string above is escape()d; the rest are formatted numbers.
    return mark_safe("".join(parts))  # nosec B308 B703


def thresholds_context(request: HttpRequest, version) -> dict:
    """What ``registry/_thresholds.html`` needs, for the version page."""
    state = version_thresholds(version=version)
    rows = [{"name": c.name, "field": FIELD_PREFIX + c.name, "threshold": c.threshold, "default": c.default,
             "chart": curve_chart(name=c.name, curve=c.curve, threshold=c.threshold) if c.curve else None}
            for c in state.classes]
    boxes = version_box_thresholds(version=version)
    return {"thresholds": state, "threshold_rows": rows,
            "threshold_history": list(threshold_history(version=version)[:HISTORY_ROWS]),
            "box_thresholds": boxes,
            "box_threshold_rows": [{"name": c.name, "field": BOX_FIELD_PREFIX + c.name, "threshold": c.threshold,
                                    "default": c.default} for c in boxes.classes],
            "box_threshold_history": list(threshold_history(version=version, kind=ThresholdKind.BOX)[:HISTORY_ROWS]),
            "can_edit_thresholds": roles.can_manage_models(request.user)}


def _posted(request: HttpRequest, version, prefix: str) -> tuple[dict[str, object], int | None]:
    """The values typed per class (a value that is not a number is passed on for the service to name)
    and the revision the form was drawn at."""
    values: dict[str, object] = {}
    for name in version.classes:
        text = request.POST.get(prefix + name, "").strip()
        if text:
            try:
                values[name] = float(text)
            except ValueError:
                values[name] = text
    try:
        revision = int(request.POST.get("revision", ""))
    except ValueError:
        revision = None
    return values, revision


def _save(request: HttpRequest, version_id: int, *, prefix: str, setter, revision_field: str, nothing: str,
          saved: str, anchor: str) -> HttpResponse:
    """Save one kind of per-class thresholds from the version page's form and go back to its section;
    ``saved`` is formatted with the version's name."""
    version = found_or_404(registry_selectors.model_version_detail(version_id=version_id),
                           f"No model version with id {version_id}.")
    values, revision = _posted(request, version, prefix)
    try:
        before = getattr(version, revision_field)
        version = setter(version=version, thresholds=values, note=request.POST.get("note", ""),
                         actor=request.user, expected_revision=revision)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if getattr(version, revision_field) == before:
            messages.info(request, nothing)
        else:
            messages.success(request, saved.format(name=version.name))
    return redirect(reverse("registry:model-version", args=[version_id]) + anchor)


@require_POST
@model_admin_role
def model_version_thresholds_save(request: HttpRequest, version_id: int) -> HttpResponse:
    return _save(request, version_id, prefix=FIELD_PREFIX, setter=version_thresholds_set,
                 revision_field="thresholds_revision", nothing="No threshold changed.",
                 saved="Decision thresholds of {name} saved; the workers use them from their next batch.",
                 anchor="#thresholds")


@require_POST
@model_admin_role
def model_version_box_thresholds_save(request: HttpRequest, version_id: int) -> HttpResponse:
    return _save(request, version_id, prefix=BOX_FIELD_PREFIX, setter=version_box_thresholds_set,
                 revision_field="box_thresholds_revision", nothing="No box threshold changed.",
                 saved="Box thresholds of {name} saved; the review view hides the model's boxes under them "
                       "from now on.",
                 anchor="#box-thresholds")
