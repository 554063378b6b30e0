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


# --- People ---------------------------------------------------------------------------------------

def person_list() -> list:
    """Every account, by user name, each with ``role_names`` (its role groups, in ROLES order)
    and ``live_tokens`` (how many of its API tokens work now)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models import Count, Prefetch

    from inspections.access import roles

    User = get_user_model()
    live = Q(api_tokens__revoked_at__isnull=True) & (
        Q(api_tokens__expires_at__isnull=True) | Q(api_tokens__expires_at__gt=timezone.now()))
    people = list(
        User.objects.annotate(live_tokens=Count("api_tokens", filter=live))
        .prefetch_related(Prefetch("groups", queryset=Group.objects.filter(name__in=roles.ROLES),
                                   to_attr="role_groups"))
        .order_by(User.USERNAME_FIELD)
    )
    for person in people:
        names = {group.name for group in person.role_groups}
        person.role_names = [role for role in roles.ROLES if role in names]
        roles.user_roles_known(person, names)
    return people


def person_get(*, person_id: int):
    """One account, or None."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=person_id).first()


def account_event_list(*, limit: int = 20) -> list:
    """The latest account changes (made, roles, deactivated, password links), newest first."""
    from inspections.access.models import AuthEvent, AuthEventKind

    kinds = [AuthEventKind.USER_CREATED, AuthEventKind.USER_DEACTIVATED, AuthEventKind.USER_REACTIVATED,
             AuthEventKind.PASSWORD_LINK, AuthEventKind.ROLE_ADDED, AuthEventKind.ROLE_REMOVED]
    return list(AuthEvent.objects.filter(kind__in=kinds).select_related("actor")[:limit])
