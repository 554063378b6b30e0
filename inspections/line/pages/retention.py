"""The retention policies page (ml_admin): per line source, what classify/ keeps and for how
long, the last hour of each source's counts, the retention sweep's last runs and what its next
run would delete. Plain forms; no script."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from inspections.access import roles
from inspections.errors import ApplicationError
from inspections.line import selectors as line_selectors
from inspections.line.services.retention import (
    retention_keep_days_set,
    retention_policy_delete,
    retention_policy_set,
    settings_default_policy,
)
from inspections.line.services.retention_sweep import (
    pending_file_deletions_count,
    retention_next_run,
    retention_runs_recent,
)
from inspections.line.services.stats import line_stats
from inspections.pages.access import role_required

NEXT_RUN_PREVIEW_LIMIT = 5000  # what the page counts of the next run, at most (each view reads that many rows)

retention_role = role_required(roles.can_manage_models, "Retention policies are managed by the role ml_admin.")


def _last_hour_per_source() -> list[dict]:
    totals: dict[str, dict] = {}
    for minute in line_stats(since=timezone.now() - timedelta(hours=1)):
        entry = totals.setdefault(minute["source"], {"source": minute["source"], "seen": 0, "kept": 0, "flagged": 0})
        for field in ("seen", "kept", "flagged"):
            entry[field] += minute[field]
    return sorted(totals.values(), key=lambda e: e["source"])


@require_http_methods(["GET", "POST"])
@retention_role
def retention_policies(request: HttpRequest) -> HttpResponse:
    form, error, status = {}, "", 200
    if request.method == "POST":
        form = {key: request.POST.get(key, "").strip() for key in ("source", "sample_rate", "max_per_minute",
                                                                   "max_per_day", "keep_days")}
        try:
            with transaction.atomic():
                policy = retention_policy_set(source=form["source"], sample_rate=form["sample_rate"],
                                              max_per_minute=form["max_per_minute"], max_per_day=form["max_per_day"],
                                              actor=request.user)
                if "keep_days" in request.POST:  # absent: unchanged (blank: keep forever)
                    policy = retention_keep_days_set(source=form["source"], keep_days=form["keep_days"],
                                                     actor=request.user)
        except ApplicationError as refused:
            error, status = refused.message, 400
        else:
            messages.success(request, f"Saved the retention policy for {policy.source or 'the default'}.")
            return redirect("inspections:retention")
    return render(request, "inspections/retention.html", {
        "policies": line_selectors.retention_policy_list(),
        "settings_default": settings_default_policy(),
        "last_hour": _last_hour_per_source(),
        "settings_keep_days": settings.STEELQC_RETENTION_KEEP_DAYS,
        "next_run": retention_next_run(limit=min(NEXT_RUN_PREVIEW_LIMIT, settings.STEELQC_RETENTION_SWEEP_MAX_IMAGES)),
        "runs": retention_runs_recent(count=10),
        "pending_files": pending_file_deletions_count(),
        "form": form, "error": error,
    }, status=status)


@require_POST
@retention_role
def retention_policy_remove(request: HttpRequest) -> HttpResponse:
    source = request.POST.get("source", "")
    if retention_policy_delete(source=source):
        messages.success(request, f"Removed the policy for {source or 'the default'}; the default applies.")
    return redirect("inspections:retention")
