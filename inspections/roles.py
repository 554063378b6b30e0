"""The role groups of ARCHITECTURE.md and the checks every page and endpoint uses."""

from __future__ import annotations

QA = "qa"
ML_ADMIN = "ml_admin"
INTEGRATOR = "integrator"
VIEWER = "viewer"
ROLES = (QA, ML_ADMIN, INTEGRATOR, VIEWER)


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_steelqc_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._steelqc_roles = cached
    return cached


def can_label(user) -> bool:
    return bool(user_roles(user) & {QA, ML_ADMIN})


def can_manage_models(user) -> bool:
    return ML_ADMIN in user_roles(user)


def can_download_artefacts(user) -> bool:
    """Model artefacts for the edge: the people who deploy models (ml_admin) and the machines (integrator)."""
    return bool(user_roles(user) & {ML_ADMIN, INTEGRATOR})


def can_upload(user) -> bool:
    return bool(user_roles(user) & {QA, ML_ADMIN, INTEGRATOR})


def can_read(user) -> bool:
    return bool(user_roles(user))
