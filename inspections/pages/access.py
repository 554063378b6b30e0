"""What each role may see and do in the pages; every view checks it again on the server."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from inspections.access import roles


def can_review_queue(user) -> bool:
    """The queue and review pages: people who label, and viewers (read-only)."""
    return bool(roles.user_roles(user) & {roles.QA, roles.ML_ADMIN, roles.VIEWER})


def can_see_dashboard(user) -> bool:
    return roles.can_read(user)


def navigation(user) -> dict[str, bool]:
    """Which links the top bar shows for ``user``."""
    manages = roles.can_manage_models(user)
    links = {
        "dashboard": can_see_dashboard(user),
        "queue": can_review_queue(user),
        "upload": roles.can_upload(user),
        "api": roles.can_read(user),
        # The Administration menu: the pages of the role ml_admin, and the Django admin for staff.
        "people": manages,
        "api_tokens": manages,
        "lockouts": manages,
        "retention": manages,
        "admin": bool(getattr(user, "is_staff", False)),
    }
    links["administration"] = any(links[name] for name in ADMINISTRATION_LINKS)
    return links


ADMINISTRATION_LINKS = ("people", "api_tokens", "lockouts", "retention", "admin")


def role_required(check, message: str):
    """Login first (redirect to the login page), then ``check(user)`` or 403 with ``message``."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def found_or_404(value, message: str):
    """``value`` when a selector found it; a 404 page saying ``message`` when it did not."""
    if value is None:
        raise Http404(message)
    return value
