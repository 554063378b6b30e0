"""Writes the auth audit trail from Django's and django-axes' signals: logins, failures,
lockouts, logouts, role (group) changes. (API tokens record their own events, in
``inspections.access.services.api_tokens``.)

Recording from a signal is right here: the row *is* the audit of the event, not business state
that could drift. Receivers that get no request (a token saved in the admin, a group added to a
user) take the actor and address from the request being served, remembered by
``AuthAuditMiddleware``; outside a request (the command line) both stay empty.
"""

from __future__ import annotations

import contextvars
import ipaddress

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from inspections.access.models import AuthEventKind
from inspections.access.services.auth_events import auth_event_record

_current_request: contextvars.ContextVar = contextvars.ContextVar("steelqc_auth_audit_request", default=None)


class AuthAuditMiddleware:
    """Remembers the request for receivers that are not given one (after AuthenticationMiddleware)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


def client_address(request) -> str | None:
    """The caller's address: the socket's, or behind ``STEELQC_TRUSTED_PROXY_COUNT`` proxies the
    address the outermost of them saw (X-Forwarded-For read from the right, never the left, which
    the client writes). Lockouts (django-axes) and the audit trail both use this."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.STEELQC_TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _context() -> tuple[object | None, str | None]:
    request = _current_request.get()
    if request is None:
        return None, None
    user = getattr(request, "user", None)
    return (user if user is not None and user.is_authenticated else None), client_address(request)


@receiver(user_logged_in, dispatch_uid="steelqc.auth_audit.logged_in")
def _logged_in(sender, request, user, **kwargs) -> None:
    auth_event_record(kind=AuthEventKind.LOGIN, user=user, ip_address=client_address(request) if request else None,
                      detail=request.path if request else "")


@receiver(user_logged_out, dispatch_uid="steelqc.auth_audit.logged_out")
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        auth_event_record(kind=AuthEventKind.LOGOUT, user=user,
                          ip_address=client_address(request) if request else None)


def _refused_while_locked(request) -> bool:
    """True when django-axes refused the attempt at the door (the pair was already locked): its
    handler then counts nothing and leaves ``axes_failures_since_start`` at None."""
    locked = bool(getattr(request, "axes_locked_out", False))
    return locked and getattr(request, "axes_failures_since_start", None) is None


@receiver(user_login_failed, dispatch_uid="steelqc.auth_audit.login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username") or "")
    if _refused_while_locked(request):
        detail = "refused while locked out"
    elif getattr(request, "axes_locked_out", False):
        detail = "wrong user name or password; the limit is reached"
    else:
        detail = "wrong user name or password"
    auth_event_record(kind=AuthEventKind.LOGIN_FAILED, username=username,
                      user=get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first(),
                      ip_address=client_address(request) if request else None, detail=detail)


def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    if _refused_while_locked(request):
        return  # django-axes signals every refused try; the trail records the lockout once
    auth_event_record(kind=AuthEventKind.LOCKOUT, username=username or "", ip_address=ip_address,
                      detail=f"{settings.AXES_FAILURE_LIMIT} failed logins")


def connect_library_signals() -> None:
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="steelqc.auth_audit.locked_out")


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="steelqc.auth_audit.groups")
def _groups_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        # The groups are gone after the clear; name them now.
        pairs = ([(user, instance) for user in instance.user_set.all()] if reverse
                 else [(instance, group) for group in instance.groups.all()])
        kind = AuthEventKind.ROLE_REMOVED
    elif action in ("post_add", "post_remove") and pk_set:
        others = model.objects.filter(pk__in=pk_set)
        pairs = [(other, instance) for other in others] if reverse else [(instance, other) for other in others]
        kind = AuthEventKind.ROLE_ADDED if action == "post_add" else AuthEventKind.ROLE_REMOVED
    else:
        return
    actor, address = _context()
    for user, group in pairs:
        auth_event_record(kind=kind, user=user, actor=actor, ip_address=address, detail=f"role {group.name}")
