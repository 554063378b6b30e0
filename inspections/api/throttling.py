"""Per-scope request rates for API clients (``read``, ``upload``, ``write``).

DRF's own throttles copy the rate table when their module is imported; this one reads it on
each request, so the rates follow the settings (and tests can lower them).
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class ScopedThrottle(ScopedRateThrottle):
    """Rate per user and scope; views pick the scope per method in ``throttle_scopes``."""

    def allow_request(self, request, view) -> bool:
        scopes = getattr(view, "throttle_scopes", {})
        self.scope = scopes.get(request.method) or ("read" if request.method in ("GET", "HEAD", "OPTIONS") else "write")
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        # SimpleRateThrottle.allow_request, not ScopedRateThrottle's (which reads view.throttle_scope).
        return super(ScopedRateThrottle, self).allow_request(request, view)

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
