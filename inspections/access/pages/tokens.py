"""API tokens for ML admins: every token (owner, name, scope, prefix, dates, last use), a form
that makes one and shows its secret this once, and revoking."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from inspections.access import roles
from inspections.access import selectors as access_selectors
from inspections.access.audit import client_address
from inspections.access.models import ApiTokenScope
from inspections.access.services.api_tokens import (
    ApiTokenError,
    api_token_create,
    api_token_create_for_new_api_user,
    api_token_revoke,
)
from inspections.errors import ApplicationError, PermissionDenied
from inspections.pages.access import found_or_404, role_required

token_role = role_required(roles.can_manage_models, "API tokens are managed by the role ml_admin.")

MAX_EXPIRY_DAYS = 3650


def _page(request: HttpRequest, *, form: dict, issued=None, error: str = "", offer_api_user: bool = False,
          status: int = 200) -> HttpResponse:
    return render(request, "registration/api_tokens.html", {
        "tokens": access_selectors.api_token_list(), "scopes": ApiTokenScope.choices, "form": form,
        "issued": issued, "error": error, "offer_api_user": offer_api_user,
    }, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@token_role
def api_token_page(request: HttpRequest) -> HttpResponse:
    """GET lists; POST makes a token and answers with the page showing its secret (never stored).
    For a user name nobody has, the answer offers to make it an API-only account with the token
    (the same form again with ``create_user=1``)."""
    if request.method == "GET":
        return _page(request, form={"scope": ApiTokenScope.READ})
    form = {key: request.POST.get(key, "").strip() for key in ("username", "name", "scope", "expires_days")}
    expires_at = None
    if form["expires_days"]:
        if not form["expires_days"].isdigit() or not 1 <= int(form["expires_days"]) <= MAX_EXPIRY_DAYS:
            return _page(request, form=form, error=f"Expiry: a whole number of days, 1 to {MAX_EXPIRY_DAYS}.",
                         status=400)
        expires_at = timezone.now() + timedelta(days=int(form["expires_days"]))
    owner = access_selectors.user_by_username(form["username"])
    arguments = {"name": form["name"], "scope": form["scope"], "expires_at": expires_at, "actor": request.user,
                 "ip_address": client_address(request)}
    try:
        if owner is not None:
            issued = api_token_create(user=owner, **arguments)
        elif form["username"] and request.POST.get("create_user") == "1":
            issued = api_token_create_for_new_api_user(username=form["username"], **arguments)
        else:
            return _page(request, form=form, error=f"No user {form['username']!r}.",
                         offer_api_user=bool(form["username"]), status=400)
    except ApiTokenError as error:
        return _page(request, form=form, error=str(error), status=400)
    except ApplicationError as error:
        return _page(request, form=form, error=error.message, status=403 if isinstance(error, PermissionDenied) else 400)
    return _page(request, form={"scope": ApiTokenScope.READ}, issued=issued, status=201)


@require_POST
@token_role
def api_token_revoke_page(request: HttpRequest, token_id: int) -> HttpResponse:
    token = found_or_404(access_selectors.api_token_get(token_id=token_id), "No such API token.")
    if api_token_revoke(token=token, actor=request.user, ip_address=client_address(request)):
        messages.success(request, f"Revoked {token.name!r} ({token.prefix}…) of {token.user.get_username()}.")
    else:
        messages.info(request, f"{token.name!r} ({token.prefix}…) was revoked already.")
    return redirect("api-tokens")
