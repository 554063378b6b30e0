"""Security headers on every response: Content-Security-Policy and Permissions-Policy.

(Referrer-Policy and X-Content-Type-Options come from Django's SecurityMiddleware, X-Frame-Options
from its clickjacking middleware.) The policy is strict — scripts and styles only from this
origin, no inline code — which the pages, Swagger UI and the admin are written to satisfy; a
Chromium test visits each and fails on any violation the browser reports.
"""

from __future__ import annotations

from django.conf import settings


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.STEELQC_CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.STEELQC_CONTENT_SECURITY_POLICY)
        if settings.STEELQC_PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.STEELQC_PERMISSIONS_POLICY)
        return response
