"""The project's own error type (services raise it, one API handler turns it into a 4xx) and
the body every error leaves in."""

from __future__ import annotations


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", details: dict | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code


def error_body(code: str, message: str, details=None) -> dict:
    """The one error shape of the API and of the pages' JSON endpoints."""
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}
