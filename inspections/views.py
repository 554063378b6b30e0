from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from . import roles, selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if not roles.can_read(request.user):
        raise PermissionDenied("Your account has no steelqc role yet; ask an administrator for one.")
    return render(request, "inspections/home.html", {"summary": selectors.dataset_summary()})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    """The browser upload page; the files go to the API (session + CSRF) from static/js/upload.js."""
    if not roles.can_upload(request.user):
        raise PermissionDenied("Uploading needs the role qa, ml_admin or integrator.")
    return render(request, "inspections/upload.html", {
        "api_images_url": reverse("inspections:api:image-list"),
        "classes": selectors.defect_class_list().filter(active=True),
    })
