"""The dashboard: what is in the system, what is left to review, how fast, what the line sends through
classify/, and how good the model is."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from inspections.catalog import selectors as catalog_selectors
from inspections.line import selectors as line_selectors
from inspections.line.services.drift import drift_report
from inspections.line.services.stats import HISTOGRAM_BINS, line_source_totals
from inspections.pages.access import can_see_dashboard, role_required
from inspections.pages.charts import Series, bar_chart, line_chart
from inspections.registry import selectors as registry_selectors
from inspections.review import selectors as review_selectors
from mlcore.artefact import CONFUSION_PLOT_FILE

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
        "has_plot": registry_selectors.model_version_file(version=version, file_name=CONFUSION_PLOT_FILE) is not None,
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


LINE_PERIODS = (("hour", "last hour", timedelta(hours=1)), ("day", "last 24 hours", timedelta(days=1)))
HISTOGRAM_HEIGHT = 30


def _histogram_bars(histogram: list[int]) -> list[dict]:
    """The confidence histogram as SVG bars (viewBox 100 x HISTOGRAM_HEIGHT), tallest bin full height."""
    top = max(histogram, default=0) or 1
    width = 100 / HISTOGRAM_BINS
    bars = []
    for index, count in enumerate(histogram):
        height = HISTOGRAM_HEIGHT * count / top
        bars.append({"x": f"{index * width + 0.5:.1f}", "width": f"{width - 1:.1f}", "y": f"{HISTOGRAM_HEIGHT - height:.1f}",
                     "height": f"{height:.1f}", "count": count,
                     "range": f"{index / HISTOGRAM_BINS:.1f}-{(index + 1) / HISTOGRAM_BINS:.1f}"})
    return bars


def _line_period(totals: dict) -> dict:
    seen = totals["seen"]

    def share(n: int) -> float:
        return n / seen if seen else 0.0

    return {
        **totals,
        "kept_share": share(totals["kept"]), "flagged_share": share(totals["flagged"]),
        "reasons": sorted(totals["per_reason"].items(), key=lambda item: (-item[1], item[0])),
        "mix": [(name, n, share(n), f"{100 * share(n):.1f}")
                for name, n in sorted(totals["per_class"].items(), key=lambda item: (-item[1], item[0]))],
        "histogram_bars": _histogram_bars(totals["confidence_histogram"]),
    }


def _line(now: datetime) -> list[dict]:
    """The line section: per source, what classify/ saw over the last hour and the last 24 hours."""
    periods = {key: line_source_totals(since=now - span) for key, _, span in LINE_PERIODS}
    sources = sorted(set().union(*periods.values()))
    return [{"source": source, "periods": [
        {"key": key, "title": title, **_line_period(periods[key][source])}
        for key, title, _ in LINE_PERIODS if source in periods[key]]} for source in sources]


@require_GET
@dashboard_role
def dashboard(request: HttpRequest) -> HttpResponse:
    hourly = review_selectors.reviews_per_hour(hours=24)
    trend = review_selectors.prediction_trend(days=30)
    version = registry_selectors.active_model_version()
    trend_chart = None
    if trend:
        trend_chart = line_chart(
            times=[row["start"] for row in trend], unit=trend[0]["unit"],
            series=[Series("needs review", [row["needs_review_share"] for row in trend], "series-review"),
                    Series("mean confidence", [row["mean_confidence"] for row in trend], "series-confidence")],
            title="Share of predictions needing review, and mean confidence, over time",
        )
    return render(request, "inspections/dashboard.html", {
        "summary": catalog_selectors.dataset_summary(),
        "backlog": review_selectors.review_queue_counts(filters={}),
        "reviews_last_24h": sum(n for _, n in hourly),
        "throughput_chart": bar_chart(times=[t for t, _ in hourly], counts=[n for _, n in hourly], unit="hour",
                                      title="Review decisions per hour, last 24 hours"),
        "trend": trend,
        "trend_chart": trend_chart,
        "version": version,
        "model": _model_metrics(version),
        "drift": _drift(drift_report(days=DRIFT_DAYS)),
        "line_sources": _line(timezone.now()),
        "classify_transport": line_selectors.classify_transport_in_use(),
        "histogram_height": HISTOGRAM_HEIGHT,
    })
