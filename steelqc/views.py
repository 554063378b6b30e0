"""Project-level endpoints that belong to no app page."""

from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from inspections.ops.health import health_report


@never_cache
@require_safe
def healthz(request) -> JsonResponse:
    """No authentication: for load balancers, orchestrators and the compose healthcheck."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@require_safe
def favicon(request) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on every page without a <link rel="icon"> (the admin, Swagger UI)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
