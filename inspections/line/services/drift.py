"""Drift: how the images each source sends compare with what the active model was validated on.

Two figures per day and source under the active version: the share flagged ``foreign`` (unlike
anything the model was trained on), and the class mix (share per predicted class) with its
total-variation distance from the baseline's.

Every image is counted once, from one source of truth per path:
- an image with a row (uploaded through ``images/``, or sent through ``classify/`` and kept by the
  retention policy) is counted from its ``Prediction``, by the day the image arrived -- aggregated
  in the database in one query;
- a ``classify/`` image the policy did not keep has no row: it is counted from the line counts
  (``LineMinute``: ``per_class`` minus ``kept_per_class``, ``per_reason["foreign"]`` minus
  ``kept_per_reason["foreign"]``), by the day of its minute, hour or day bucket.

``drift_alerts_check`` (the periodic job) opens a ``DriftAlert`` for a source whose foreign share
over the last ``STEELQC_DRIFT_WINDOW_HOURS`` passed ``STEELQC_DRIFT_FOREIGN_SHARE`` (with at least
``STEELQC_DRIFT_MIN_IMAGES`` images), closes it when the share falls back, and sends a
``drift.alert`` / ``drift.resolved`` event each time through the promotion webhook's mechanism.
A source with too few images in the window keeps its state: too little to tell either way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, TruncDay
from django.db.models.lookups import Contains
from django.utils import timezone

from inspections import queueing
from inspections.line.models import DriftAlert, LineResolution
from inspections.line.services.stats import line_totals
from inspections.locks import DRIFT_ALERT_LOCK, lock_for_transaction
from inspections.registry.models import ModelVersion, ModelVersionKind, ModelVersionStatus
from inspections.review.models import Prediction
from inspections.task_names import DRIFT_ALERT_EVENT, DRIFT_RESOLVED_EVENT
from mlcore.artefact import REASON_FOREIGN

MAX_DAYS = 90


@dataclass(frozen=True)
class DriftBaseline:
    """What the active version saw on held-out in-domain images: the share its detector flagged
    foreign and the validation split's class mix; ``*_basis`` says where each figure comes from."""

    foreign_share: float | None
    foreign_share_basis: str
    class_mix: dict[str, float]
    class_mix_basis: str


@dataclass
class DriftFigures:
    """Images, how many flagged foreign, and predictions per class, for one day/source or a window."""

    images: int = 0
    foreign: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)

    def add(self, label: str, images: int, foreign: int) -> None:
        self.images += images
        self.foreign += foreign
        self.class_counts[label] = self.class_counts.get(label, 0) + images

    def add_unkept(self, totals: dict) -> None:
        """Add the line counts' images that left no row (the kept ones are counted from their
        prediction rows)."""
        kept_per_class = totals["kept_per_class"]
        for label, n in totals["per_class"].items():
            unkept = n - kept_per_class.get(label, 0)
            if unkept > 0:
                self.add(label, unkept, 0)
        self.foreign += max(totals["per_reason"].get(REASON_FOREIGN, 0)
                            - totals["kept_per_reason"].get(REASON_FOREIGN, 0), 0)

    @property
    def foreign_share(self) -> float | None:
        return self.foreign / self.images if self.images else None

    @property
    def class_mix(self) -> dict[str, float]:
        return {name: n / self.images for name, n in sorted(self.class_counts.items())} if self.images else {}

    def as_dict(self, baseline: DriftBaseline) -> dict:
        return {"images": self.images, "foreign": self.foreign, "foreign_share": self.foreign_share,
                "class_mix": self.class_mix, "class_mix_distance": total_variation(self.class_mix, baseline.class_mix)}


@dataclass
class DriftChanges:
    opened: list[DriftAlert] = field(default_factory=list)
    closed: list[DriftAlert] = field(default_factory=list)


def total_variation(mix: dict[str, float], baseline: dict[str, float]) -> float | None:
    """Half the sum of absolute differences of two class mixes: 0 the same, 1 nothing in common."""
    if not mix or not baseline:
        return None
    return 0.5 * sum(abs(mix.get(name, 0.0) - baseline.get(name, 0.0)) for name in set(mix) | set(baseline))


# --- Baseline ---------------------------------------------------------------------------------

def drift_baseline(*, version: ModelVersion) -> DriftBaseline:
    metrics = version.metrics or {}
    recorded = ((metrics.get("review") or {}).get("reasons") or {}).get(REASON_FOREIGN)
    if recorded is not None:
        foreign, foreign_basis = float(recorded), f"measured on the {metrics.get('split') or 'held-out'} split"
    else:
        foreign, foreign_basis = 1.0 - _ood_pass_rate(version), "the detector's calibration (in-domain pass rate)"
    mix, mix_basis = _validation_class_mix(version), "validation split"
    if not mix:
        support = {name: (m or {}).get("support", 0) for name, m in (metrics.get("per_class") or {}).items()}
        mix, mix_basis = _shares(support), f"{metrics.get('split') or 'evaluation'} split"
    return DriftBaseline(foreign_share=foreign, foreign_share_basis=foreign_basis, class_mix=mix,
                         class_mix_basis=mix_basis if mix else "")


def _ood_pass_rate(version: ModelVersion) -> float:
    from mlcore.training.config import TrainConfig

    run = getattr(version, "training_run", None)
    given = (run.parameters or {}).get("ood_pass_rate") if run is not None else None
    return float(given) if given is not None else TrainConfig.ood_pass_rate


def _validation_class_mix(version: ModelVersion) -> dict[str, float]:
    run = getattr(version, "training_run", None)
    snapshot = run.snapshot if run is not None else None
    if snapshot is None:
        return {}
    return _shares({label: (splits or {}).get("val", 0) for label, splits in (snapshot.counts or {}).items()})


def _shares(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {name: n / total for name, n in sorted(counts.items()) if n} if total else {}


# --- Figures ----------------------------------------------------------------------------------

def _active_version() -> ModelVersion | None:
    return (ModelVersion.objects.select_related("training_run__snapshot")
            .filter(status=ModelVersionStatus.ACTIVE, kind=ModelVersionKind.CLASSIFIER).first())


def _predictions(*, version: ModelVersion, since: datetime, source: str | None = None) -> QuerySet[Prediction]:
    predictions = Prediction.objects.filter(model_version=version, image__created_at__gte=since)
    if source is not None:
        predictions = predictions.filter(image__source=source)
    # Matched on the JSON text (with its quotes), which works the same on PostgreSQL and SQLite.
    flagged = Contains(Cast("review_reasons", TextField()), Value(f'"{REASON_FOREIGN}"'))
    return predictions.annotate(flagged=flagged)


def _grouped(predictions: QuerySet[Prediction], *keys: str):
    """(key values..., class name, images, foreign) rows, counted in the database."""
    return (predictions.values(*keys, class_name=F("label__name"))
            .annotate(n=Count("id"), foreign=Count("id", filter=Q(flagged=True))).order_by())


def source_window_figures(*, version: ModelVersion, since: datetime) -> dict[str, DriftFigures]:
    """Source -> figures over the images that arrived since ``since``."""
    figures: dict[str, DriftFigures] = defaultdict(DriftFigures)
    for row in _grouped(_predictions(version=version, since=since), "image__source"):
        figures[row["image__source"]].add(row["class_name"], row["n"], row["foreign"])
    for (source, _), totals in line_totals(since=since, model_version_id=version.pk, histogram=False).items():
        figures[source].add_unkept(totals)
    return dict(figures)


def drift_report(*, days: int = 14, source: str | None = None, now: datetime | None = None) -> dict:
    """Per day and source over the last ``days`` days (today included), and per source over them
    all, the active version's figures against its baseline; the open alerts; the alert settings.
    ``model_version`` is None (and the lists empty) while no version is active."""
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    alerts = DriftAlert.objects.select_related("model_version").filter(closed_at__isnull=True).order_by("source")
    if source is not None:
        alerts = alerts.filter(source=source)
    report = {
        "model_version": None, "baseline": None, "start": start, "end": now, "days": [], "sources": [],
        "open_alerts": list(alerts),
        "settings": {"foreign_share_threshold": settings.STEELQC_DRIFT_FOREIGN_SHARE,
                     "window_hours": settings.STEELQC_DRIFT_WINDOW_HOURS,
                     "min_images": settings.STEELQC_DRIFT_MIN_IMAGES},
    }
    version = _active_version()
    if version is None:
        return report
    baseline = drift_baseline(version=version)
    per_day: dict[tuple, DriftFigures] = defaultdict(DriftFigures)
    rows = _grouped(_predictions(version=version, since=start, source=source).annotate(
        day=TruncDay("image__created_at")), "day", "image__source")
    for row in rows:
        per_day[(timezone.localtime(row["day"]).date(), row["image__source"])].add(
            row["class_name"], row["n"], row["foreign"])
    line_days = line_totals(since=start, resolution=LineResolution.DAY, source=source, model_version_id=version.pk,
                            histogram=False)
    for (name, day), totals in line_days.items():
        per_day[(timezone.localtime(day).date(), name)].add_unkept(totals)
    per_source: dict[str, DriftFigures] = defaultdict(DriftFigures)
    for (_, name), figures in per_day.items():
        for label, n in figures.class_counts.items():
            per_source[name].class_counts[label] = per_source[name].class_counts.get(label, 0) + n
        per_source[name].images += figures.images
        per_source[name].foreign += figures.foreign
    report.update(
        model_version=version, baseline=baseline,
        days=[{"day": day, "source": name, **figures.as_dict(baseline)}
              for (day, name), figures in sorted(per_day.items())],
        sources=[{"source": name, **figures.as_dict(baseline)} for name, figures in sorted(per_source.items())],
    )
    return report


# --- Alerts -----------------------------------------------------------------------------------

def drift_alerts_check(*, now: datetime | None = None) -> DriftChanges:
    """Open an alert for each source over the threshold that has none open; close the open ones
    whose source fell back to or below it. Events are queued once the change has committed."""
    now = now or timezone.now()
    changes = DriftChanges()
    version = _active_version()
    if version is None:
        return changes
    window, threshold = settings.STEELQC_DRIFT_WINDOW_HOURS, settings.STEELQC_DRIFT_FOREIGN_SHARE
    figures = source_window_figures(version=version, since=now - timedelta(hours=window))
    baseline = drift_baseline(version=version)
    with transaction.atomic():
        lock_for_transaction(DRIFT_ALERT_LOCK)  # two checks at once must not both open an alert
        open_alerts = {alert.source: alert for alert in DriftAlert.objects.filter(closed_at__isnull=True)}
        for source, counted in sorted(figures.items()):
            if counted.images < settings.STEELQC_DRIFT_MIN_IMAGES:
                continue
            share = counted.foreign_share
            alert = open_alerts.get(source)
            if alert is None and share > threshold:
                changes.opened.append(DriftAlert.objects.create(
                    source=source, model_version=version, opened_at=now, window_hours=window, threshold=threshold,
                    foreign_share=share, image_count=counted.images, baseline_foreign_share=baseline.foreign_share))
            elif alert is not None and share <= threshold:
                alert.closed_at, alert.closed_foreign_share, alert.closed_image_count = now, share, counted.images
                alert.save(update_fields=["closed_at", "closed_foreign_share", "closed_image_count"])
                changes.closed.append(alert)
        for event, alerts in ((DRIFT_ALERT_EVENT, changes.opened), (DRIFT_RESOLVED_EVENT, changes.closed)):
            for alert in alerts:
                transaction.on_commit(
                    lambda alert_id=alert.pk, event=event: queueing.drift_event_enqueue(alert_id=alert_id, event=event))
    return changes
