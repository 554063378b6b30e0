"""Reads of the access domain."""

from __future__ import annotations

from django.db.models import Max, Q
from django.utils import timezone

# --- Logins ---------------------------------------------------------------------------------------

def login_lockout_list() -> list[dict]:
    """(user name, address) pairs refused right now for too many failed logins, newest first."""
    from axes.helpers import get_cool_off
    from axes.models import AccessAttempt
    from django.conf import settings

    cool_off = get_cool_off()
    attempts = AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
    if cool_off:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    return [
        {"username": a.username, "ip_address": a.ip_address, "failures": a.failures_since_start,
         "locked_at": a.attempt_time, "retry_at": a.attempt_time + cool_off if cool_off else None}
        for a in attempts.order_by("-attempt_time")
    ]


def login_lockout_retry_at(*, username: str, ip_address: str | None):
    """When (username, address) may try again: the last counted failure plus the cool-off."""
    from axes.helpers import get_cool_off
    from axes.models import AccessAttempt

    cool_off = get_cool_off()
    if cool_off is None:
        return None
    last = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(t=Max("attempt_time"))["t"]
    return (last or timezone.now()) + cool_off


# --- API tokens -----------------------------------------------------------------------------------

def api_token_list(*, username: str | None = None, include_dead: bool = True) -> list:
    """API tokens with their owners, newest first; ``include_dead=False`` leaves out revoked and
    expired ones."""
    from inspections.access.models import ApiToken

    tokens = ApiToken.objects.select_related("user", "created_by", "revoked_by")
    if username:
        tokens = tokens.filter(user__username=username)
    if not include_dead:
        tokens = tokens.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
    return list(tokens)


def api_token_get(*, token_id: int):
    """One token with its owner, or None."""
    from inspections.access.models import ApiToken

    return ApiToken.objects.select_related("user").filter(pk=token_id).first()


def user_by_username(username: str):
    """The user of that name, or None."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return User.objects.filter(**{User.USERNAME_FIELD: username}).first() if username else None
