"""Reads of the line domain."""

from __future__ import annotations


def retention_policy_list():
    """The line retention policies, the default (blank source) first."""
    from inspections.line.models import RetentionPolicy

    return RetentionPolicy.objects.select_related("updated_by").order_by("source")


def classify_transport_in_use() -> dict:
    """How ``classify/`` requests reach the line worker on this installation: ``{"kind": "redis"}``,
    or ``{"kind": "files", "folder": ...}`` without Redis."""
    from inspections.line.services.classify_transport import FILES, classify_files_directory, classify_transport_kind

    kind = classify_transport_kind()
    return {"kind": kind, "folder": str(classify_files_directory()) if kind == FILES else None}
