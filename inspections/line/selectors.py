"""Reads of the line domain."""

from __future__ import annotations


def retention_policy_list():
    """The line retention policies, the default (blank source) first."""
    from inspections.line.models import RetentionPolicy

    return RetentionPolicy.objects.select_related("updated_by").order_by("source")
