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


def bridge_taken_batches(*, source: str, origin: str = "folder") -> list[tuple[str, list]]:
    """The line bridge's frames of ``source`` still waiting for their answer, per batch (oldest
    first), each batch's frames in the order they were sent."""
    from inspections.line.models import BridgeFrame, BridgeFrameState

    batches: dict[str, list] = {}
    for frame in BridgeFrame.objects.filter(source=source, origin=origin, state=BridgeFrameState.TAKEN).order_by(
            "id"):
        batches.setdefault(frame.batch, []).append(frame)
    return [(batch, sorted(frames, key=lambda frame: frame.position)) for batch, frames in batches.items()]


def bridge_outbox_size() -> int:
    """Messages the line bridge has not had acknowledged by the MQTT broker yet."""
    from inspections.line.models import BridgeMessage

    return BridgeMessage.objects.filter(published_at__isnull=True).count()


def bridge_outbox_after(*, after_id: int, limit: int) -> list:
    """The next ``limit`` waiting messages after ``after_id``, in the order they were written."""
    from inspections.line.models import BridgeMessage

    return list(BridgeMessage.objects.filter(published_at__isnull=True, id__gt=after_id).order_by("id")[:limit])


def bridge_last_results(*, sources: list[str]) -> dict[str, dict]:
    """Source -> the line bridge's latest recorded result for it (for the OPC UA values at start)."""
    from inspections.line.models import BridgeFrame, BridgeFrameState

    found = {}
    for source in sources:
        frame = (BridgeFrame.objects.filter(source=source, state=BridgeFrameState.DONE)
                 .order_by("-finished_at", "-id").only("result").first())
        if frame is not None and frame.result:
            found[source] = frame.result
    return found
