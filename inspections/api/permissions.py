"""Role checks for the API, per ARCHITECTURE.md's role table.

Each view names the check per HTTP method in ``role_checks``; anything it does not name needs
the read role (so an unsupported method by a known user answers 405, not 403).
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from inspections import roles

class _RoleCheck(BasePermission):
    check = staticmethod(roles.can_read)
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and self.check(request.user))


class ReadRole(_RoleCheck):
    """Any of the four roles (or a superuser)."""

    check = staticmethod(roles.can_read)
    message = "You need one of the roles qa, ml_admin, integrator or viewer."


class UploadRole(_RoleCheck):
    check = staticmethod(roles.can_upload)
    message = "Uploading needs the role qa, ml_admin or integrator."


class LabelRole(_RoleCheck):
    check = staticmethod(roles.can_label)
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
        self.message = permission.message
        return permission.has_permission(request, view)
