"""The role groups of ARCHITECTURE.md and the checks every page and endpoint uses."""

from __future__ import annotations

from django.db import connection

QA = "qa"
ML_ADMIN = "ml_admin"
INTEGRATOR = "integrator"
VIEWER = "viewer"
ROLES = (QA, ML_ADMIN, INTEGRATOR, VIEWER)

# A user's role groups, read once per request. One plain statement: building the same query
# through the ORM's related manager cost several times more CPU than running it (profile-upload
# in docs/benchmarks.md), on every API request. The tables are django.contrib.auth's: the user
# model is its User (no AUTH_USER_MODEL), and tests/inspections/test_roles.py checks it against the ORM.
_ROLES_SQL = (
    "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id "
    "WHERE ug.user_id = %s AND g.name IN (%s, %s, %s, %s)"
)


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_steelqc_roles", None)
    if cached is None:
        with connection.cursor() as cursor:
            cursor.execute(_ROLES_SQL, [user.pk, *ROLES])
            cached = {name for (name,) in cursor.fetchall()}
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
