"""Role checks for the API, per ARCHITECTURE.md's role table.

Each view names the check per HTTP method in ``role_checks``; anything it does not name needs
the read role (so an unsupported method by a known user answers 405, not 403).

A request made with an API token is also held to the token's scope: the effective right is the
role's and the scope's together. Every scope reads (safe methods); beyond that ``upload`` may do
what ``UploadRole`` guards, ``review`` what ``LabelRole`` guards, ``admin`` all the role allows.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from inspections.access import roles
from inspections.access.models import ApiToken, ApiTokenScope


class _RoleCheck(BasePermission):
    check = staticmethod(roles.can_read)
    message = "Your role does not allow this."
    # The token scopes that may go past a safe method here (ADMIN always may).
    token_scopes: frozenset[str] = frozenset()

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated and self.check(request.user)):
            return False
        token = request.auth
        if not isinstance(token, ApiToken) or request.method in SAFE_METHODS or token.scope == ApiTokenScope.ADMIN:
            return True
        if token.scope in self.token_scopes:
            return True
        self.message = f"This API token's scope ({token.scope}) does not allow this."
        return False


class ReadRole(_RoleCheck):
    """Any of the four roles (or a superuser)."""

    check = staticmethod(roles.can_read)
    message = "You need one of the roles qa, ml_admin, integrator or viewer."


class UploadRole(_RoleCheck):
    check = staticmethod(roles.can_upload)
    token_scopes = frozenset({ApiTokenScope.UPLOAD})
    message = "Uploading needs the role qa, ml_admin or integrator."


class LabelRole(_RoleCheck):
    check = staticmethod(roles.can_label)
    token_scopes = frozenset({ApiTokenScope.REVIEW})
    message = "This needs the role qa or ml_admin."


class ModelAdminRole(_RoleCheck):
    check = staticmethod(roles.can_manage_models)
    message = "This needs the role ml_admin."


class ArtefactDownloadRole(_RoleCheck):
    check = staticmethod(roles.can_download_artefacts)
    message = "Downloading model artefacts needs the role ml_admin or integrator."


class RolePerMethod(BasePermission):
    """Reads ``view.role_checks`` (method -> permission class); unnamed methods need ReadRole."""

    message = ReadRole.message

    def has_permission(self, request, view) -> bool:
        permission_class = getattr(view, "role_checks", {}).get(request.method) or ReadRole
        permission = permission_class()
        allowed = permission.has_permission(request, view)
        self.message = permission.message
        return allowed
