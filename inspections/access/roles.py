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
# ROLE_GROUPS_SQL (parameters: ROLES) joins to a user's id as ``ug.user_id`` and gives ``g.name``;
# the token lookup (inspections.access.services.api_tokens) joins it to the token's owner in its one statement.
ROLE_GROUPS_SQL = "(auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id AND g.name IN (%s, %s, %s, %s))"
# Constant text; the values are parameters.
_ROLES_SQL = f"SELECT g.name FROM {ROLE_GROUPS_SQL} WHERE ug.user_id = %s"  # nosec B608


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_steelqc_roles", None)
    if cached is None:
        with connection.cursor() as cursor:
            cursor.execute(_ROLES_SQL, [*ROLES, user.pk])
            cached = {name for (name,) in cursor.fetchall()}
        user_roles_known(user, cached)
    return cached


def user_roles_known(user, names) -> None:
    """Remember ``user``'s role groups, read by another statement (with ROLE_GROUPS_SQL), for this user object."""
    user._steelqc_roles = {name for name in names if name in ROLES}


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
