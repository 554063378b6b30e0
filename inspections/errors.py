"""The project's own error type (services raise it, one API handler turns it into a 4xx) and
the body every error leaves in."""

from __future__ import annotations


class ApplicationError(Exception):
    """A request refused by a rule: the input is not valid. Services raise it (or one of the kinds
    below) with a ``code`` clients can rely on; the edge (``inspections.api.exceptions.http_status``)
    decides the HTTP status from the kind, so no service speaks HTTP."""

    def __init__(self, message: str, *, code: str = "invalid", details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}


class NotFound(ApplicationError):
    """What the request names does not exist."""


class PermissionDenied(ApplicationError):
    """The actor's role may not do this."""


class Conflict(ApplicationError):
    """The request clashes with the current state: it exists already, changed meanwhile, is busy."""


class StaleRevision(ApplicationError):
    """The caller acted on a revision that is no longer the current one (its If-Match is stale)."""


class TooLarge(ApplicationError):
    """The input is larger than the installation accepts."""


class Unavailable(ApplicationError):
    """Something the request needs (the broker, Redis) is not reachable now; try again later."""


def error_body(code: str, message: str, details=None) -> dict:
    """The one error shape of the API and of the pages' JSON endpoints."""
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}
