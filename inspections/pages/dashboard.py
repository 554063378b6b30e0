"""The dashboard: what is in the system, what is left to review, how fast, and how good the model is."""

from __future__ import annotations

from datetime import datetime, time

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from inspections import selectors
from inspections.services.drift import drift_report
from mlcore.artefact import CONFUSION_PLOT_FILE

from .access import can_see_dashboard, role_required
from .charts import Series, bar_chart, line_chart

dashboard_role = role_required(can_see_dashboard, "The dashboard needs one of the roles.")


def _model_metrics(version) -> dict | None:
    if version is None:
        return None
    metrics = version.metrics or {}
    classes = metrics.get("classes") or version.classes
    per_class = metrics.get("per_class") or {}
    matrix = metrics.get("confusion_matrix") or []
    return {
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "count": metrics.get("count"),
        "per_class": [(name, per_class.get(name, {})) for name in classes],
        "matrix_rows": [(name, row) for name, row in zip(classes, matrix)],
        "classes": classes,
        "has_plot": selectors.model_version_file(version=version, file_name=CONFUSION_PLOT_FILE) is not None,
        "plot_url": reverse("inspections:model-confusion-matrix", args=[version.pk]),
    }


DRIFT_DAYS = 14


def _drift(report: dict) -> dict:
    """The drift section: a chart per source of its daily foreign share against the baseline, and
    the day/source table with each class mix (largest share first)."""
    baseline = report["baseline"]
    charts = []
    for source in report["sources"]:
        days = [row for row in report["days"] if row["source"] == source["source"]]
        shares = [row["foreign_share"] for row in days]
        series = [Series("unlike training", shares, "series-foreign")]
        if baseline and baseline.foreign_share is not None:
            series.append(Series("baseline", [baseline.foreign_share] * len(days), "series-baseline"))
        name = source["source"] or "(no source)"
        charts.append((name, line_chart(
            times=[timezone.make_aware(datetime.combine(row["day"], time(12))) for row in days], unit="day",
            series=series, title=f"Share of images unlike training per day, source {name}")))

    def mix(shares: dict) -> list:
        return sorted(shares.items(), key=lambda item: -item[1])

    return {**report, "period_days": DRIFT_DAYS, "charts": charts, "rows": [{**row, "mix": mix(row["class_mix"])} for row in report["days"]],
            "baseline_mix": mix(baseline.class_mix) if baseline else []}


@require_GET
@dashboard_role
def dashboard(request: HttpRequest) -> HttpResponse:
    hourly = selectors.reviews_per_hour(hours=24)
    trend = selectors.prediction_trend(days=30)
    version = selectors.active_model_version()
    trend_chart = None
    if trend:
        trend_chart = line_chart(
            times=[row["start"] for row in trend], unit=trend[0]["unit"],
            series=[Series("needs review", [row["needs_review_share"] for row in trend], "series-review"),
                    Series("mean confidence", [row["mean_confidence"] for row in trend], "series-confidence")],
            title="Share of predictions needing review, and mean confidence, over time",
        )
    return render(request, "inspections/dashboard.html", {
        "summary": selectors.dataset_summary(),
        "backlog": selectors.review_queue_counts(filters={}),
        "reviews_last_24h": sum(n for _, n in hourly),
        "throughput_chart": bar_chart(times=[t for t, _ in hourly], counts=[n for _, n in hourly], unit="hour",
                                      title="Review decisions per hour, last 24 hours"),
        "trend": trend,
        "trend_chart": trend_chart,
        "version": version,
        "model": _model_metrics(version),
        "drift": _drift(drift_report(days=DRIFT_DAYS)),
    })
