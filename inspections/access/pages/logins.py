"""Login lockouts: the page a locked-out person sees (django-axes calls ``login_locked_out``),
and the page where an ML admin lists locked logins and unlocks one."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from inspections.access import roles
from inspections.access import selectors as access_selectors
from inspections.access.audit import client_address
from inspections.access.services.auth_events import login_lockout_clear
from inspections.pages.access import role_required

unlock_role = role_required(roles.can_manage_models, "Unlocking logins needs the role ml_admin.")


def login_locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 with a page saying the login is locked, until when, and who can lift it sooner."""
    username = str((credentials or {}).get("username") or request.POST.get("username", ""))
    retry_at = access_selectors.login_lockout_retry_at(username=username, ip_address=client_address(request))
    return render(request, "registration/locked_out.html", {
        "username": username, "retry_at": retry_at, "failure_limit": settings.AXES_FAILURE_LIMIT,
    }, status=429)


@require_GET
@unlock_role
def login_lockout_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/lockouts.html", {"lockouts": access_selectors.login_lockout_list()})


@require_POST
@unlock_role
def login_lockout_unlock(request: HttpRequest) -> HttpResponse:
    username = request.POST.get("username", "")
    ip_address = request.POST.get("ip_address", "")
    if login_lockout_clear(username=username, ip_address=ip_address, actor=request.user,
                           actor_address=client_address(request)):
        messages.success(request, f"Unlocked: {username or '(no name)'} may log in again from {ip_address}.")
    else:
        messages.info(request, f"{username or '(no name)'} from {ip_address} was not locked (any more).")
    return redirect("login-lockouts")
