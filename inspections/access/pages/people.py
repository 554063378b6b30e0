"""People: every account with its role; make a login with a role, change a role, deactivate or
reactivate, and make a password link to hand over. Who may do what to whom:
``inspections.access.services.people``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from inspections.access import roles
from inspections.access import selectors as access_selectors
from inspections.access.audit import client_address
from inspections.access.services.people import (
    password_link_make,
    person_create,
    person_deactivate,
    person_manage_refusal,
    person_reactivate,
    person_role_set,
    roles_given_by,
)
from inspections.errors import ApplicationError, Conflict, PermissionDenied
from inspections.pages.access import found_or_404, role_required

people_role = role_required(roles.can_manage_models, "People are managed by the role ml_admin (or a superuser).")


def _page(request: HttpRequest, *, form: dict, link=None, error: str = "", status: int = 200) -> HttpResponse:
    people = access_selectors.person_list()
    for person in people:
        person.refusal = person_manage_refusal(actor=request.user, person=person)
    return render(request, "registration/people.html", {
        "people": people, "roles_to_give": roles_given_by(request.user), "form": form, "link": link,
        "error": error, "events": access_selectors.account_event_list(),
        "link_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }, status=status)


def _link(request: HttpRequest, person) -> dict:
    """The password link for ``person``, made now and shown this once."""
    parts = password_link_make(person=person, actor=request.user, ip_address=client_address(request))
    url = request.build_absolute_uri(reverse("password-reset-confirm",
                                             kwargs={"uidb64": parts.uidb64, "token": parts.token}))
    return {"person": person, "url": url}


def _status(error: ApplicationError) -> int:
    return 403 if isinstance(error, PermissionDenied) else 409 if isinstance(error, Conflict) else 400


@never_cache
@require_http_methods(["GET", "POST"])
@people_role
def people_page(request: HttpRequest) -> HttpResponse:
    """GET lists; POST makes a login with a role and answers with its password link."""
    if request.method == "GET":
        return _page(request, form={"role": roles.QA})
    form = {key: request.POST.get(key, "").strip() for key in ("username", "role")}
    try:
        person = person_create(username=form["username"], role=form["role"], actor=request.user,
                               ip_address=client_address(request))
        link = _link(request, person)
    except ApplicationError as error:
        return _page(request, form=form, error=error.message, status=_status(error))
    return _page(request, form={"role": form["role"]}, link=link, status=201)


@require_POST
@people_role
def person_role_page(request: HttpRequest, person_id: int) -> HttpResponse:
    person = found_or_404(access_selectors.person_get(person_id=person_id), "No such person.")
    role = request.POST.get("role", "")
    try:
        changed = person_role_set(person=person, role=role, actor=request.user, ip_address=client_address(request))
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{person.get_username()} now has the role {role}." if changed
                         else f"{person.get_username()} had the role {role} already.")
    return redirect("people")


@require_POST
@people_role
def person_active_page(request: HttpRequest, person_id: int) -> HttpResponse:
    """``active=0`` deactivates, ``active=1`` reactivates."""
    person = found_or_404(access_selectors.person_get(person_id=person_id), "No such person.")
    activate = request.POST.get("active") == "1"
    change = person_reactivate if activate else person_deactivate
    try:
        changed = change(person=person, actor=request.user, ip_address=client_address(request))
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        name = person.get_username()
        if activate:
            messages.success(request, f"{name} may log in again." if changed else f"{name} was active already.")
        else:
            messages.success(request, f"{name} is deactivated: their logins, sessions and tokens are refused."
                             if changed else f"{name} was deactivated already.")
    return redirect("people")


@never_cache
@require_POST
@people_role
def person_password_link_page(request: HttpRequest, person_id: int) -> HttpResponse:
    person = found_or_404(access_selectors.person_get(person_id=person_id), "No such person.")
    try:
        link = _link(request, person)
    except ApplicationError as error:
        return _page(request, form={"role": roles.QA}, error=error.message, status=_status(error))
    return _page(request, form={"role": roles.QA}, link=link)
