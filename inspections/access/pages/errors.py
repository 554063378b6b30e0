"""The site's own 403 page (``handler403``): the base layout with its navigation, the refusal's
sentence (which role the page needs, from ``role_required``) and the roles the visitor has."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from inspections.access import roles


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    message = str(exception or "").strip()
    user = getattr(request, "user", None)
    return render(request, "403.html", {
        "refusal": message or "Your account may not open this page.",
        "your_roles": [role for role in roles.ROLES if role in roles.user_roles(user)],
        "is_superuser": bool(user is not None and user.is_authenticated and user.is_superuser),
    }, status=403)
