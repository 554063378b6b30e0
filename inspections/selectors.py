"""Reads."""

from __future__ import annotations

from django.db.models import Count

from inspections.models import InspectionImage


def dataset_summary() -> dict:
    """Images per label and split, and per status."""
    per_label: dict[str, dict[str, int]] = {}
    for row in InspectionImage.objects.values("label__name", "split").annotate(n=Count("id")).order_by("label__name"):
        per_label.setdefault(row["label__name"] or "(unlabelled)", {})[row["split"]] = row["n"]
    per_status = dict(InspectionImage.objects.values_list("status").annotate(n=Count("id")))
    return {"per_label": per_label, "per_status": per_status, "total": sum(per_status.values())}


def database_ping() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return f"ok ({connection.vendor})"
