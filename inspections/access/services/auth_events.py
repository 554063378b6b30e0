"""The auth audit trail (``AuthEvent``): one append-only row per authentication event, and the
one write that is not a plain record: unlocking a locked-out login."""

from __future__ import annotations

from django.db import transaction

from inspections.access.models import AuthEvent, AuthEventKind
from steelqc.observability import request_id_get


def auth_event_record(*, kind: AuthEventKind, user=None, username: str = "", actor=None,
                      ip_address: str | None = None, detail: str = "") -> AuthEvent:
    """Write one event; the request id comes from the request (or task) being served, if any."""
    if user is not None and not username:
        username = user.get_username()
    return AuthEvent.objects.create(
        kind=kind,
        user=user if user is not None and user.pk else None,
        username=(username or "")[:150],
        actor=actor if actor is not None and actor.is_authenticated else None,
        ip_address=ip_address or None,
        request_id=request_id_get() or "",
        detail=detail[:255],
    )


def login_lockout_clear(*, username: str, ip_address: str, actor=None, actor_address: str | None = None) -> int:
    """Forget the failed logins of (username, address), so the next right password gets in.

    Returns how many lockout records were removed (0: it was not locked, or already expired).
    """
    from axes.utils import reset

    with transaction.atomic():
        removed = reset(username=username, ip=ip_address)
        if removed:
            auth_event_record(kind=AuthEventKind.UNLOCK, username=username, actor=actor, ip_address=actor_address,
                              detail=f"login from {ip_address} unlocked")
    return removed
