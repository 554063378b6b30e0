"""Project-level endpoints that belong to no app page."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from inspections.health import health_report


@never_cache
@require_safe
def healthz(request) -> JsonResponse:
    """No authentication: for load balancers, orchestrators and the compose healthcheck."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
