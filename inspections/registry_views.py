"""Pages for ML admins: the model registry (metrics, plots, gate decisions, promote, roll back)
and training runs (start, live progress, cancel). Everyone with a role may look; only
`ml_admin` may act, and every action is checked here, not just hidden in the template."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inspections.errors import ApplicationError
from inspections.models import ModelVersion, TrainingRun
from inspections.roles import can_manage_models, can_read
from inspections.services.model_versions import model_version_promote, model_version_rollback
from inspections.services.training import BACKBONE_CHOICES, training_run_cancel, training_run_start

PLOT_FILES = {"confusion_matrix": "confusion_matrix.png", "training_curves": "training_curves.png"}


def _require(request: HttpRequest, check) -> None:
    if not check(request.user):
        raise PermissionDenied("Your role does not allow this.")


@login_required
def model_version_list(request: HttpRequest) -> HttpResponse:
    _require(request, can_read)
    versions = ModelVersion.objects.select_related("training_run__snapshot", "created_by").order_by("-number")
    return render(request, "registry/model_versions.html", {
        "versions": versions, "can_manage": can_manage_models(request.user),
    })


@login_required
def model_version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    _require(request, can_read)
    version = get_object_or_404(ModelVersion.objects.select_related("training_run__snapshot"), pk=version_id)
    metrics = version.metrics or {}
    per_class = [
        {"name": name, **values} for name, values in (metrics.get("per_class") or {}).items()
    ]
    return render(request, "registry/model_version_detail.html", {
        "version": version, "metrics": metrics, "per_class": per_class, "gate": metrics.get("gate"),
        "can_manage": can_manage_models(request.user), "plots": PLOT_FILES,
    })


@login_required
def model_version_plot(request: HttpRequest, version_id: int, plot: str) -> FileResponse:
    _require(request, can_read)
    version = get_object_or_404(ModelVersion, pk=version_id)
    if plot not in PLOT_FILES:
        raise Http404("No such plot.")
    name = f"{version.artifact_path}/{PLOT_FILES[plot]}"
    if not default_storage.exists(name):
        raise Http404("This version has no such plot.")
    return FileResponse(default_storage.open(name, "rb"), content_type=mimetypes.guess_type(name)[0] or "image/png")


@login_required
@require_POST
def model_version_promote_page(request: HttpRequest, version_id: int) -> HttpResponse:
    _require(request, can_manage_models)
    version = get_object_or_404(ModelVersion, pk=version_id)
    try:
        version = model_version_promote(version=version, actor=request.user,
                                        repredict_review_queue=request.POST.get("repredict") == "on")
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{version.name} is now the active version.")
    return redirect("registry:model-versions")


@login_required
@require_POST
def model_version_rollback_page(request: HttpRequest) -> HttpResponse:
    _require(request, can_manage_models)
    try:
        version = model_version_rollback(actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Rolled back: {version.name} is active again.")
    return redirect("registry:model-versions")


@login_required
def training_run_list(request: HttpRequest) -> HttpResponse:
    _require(request, can_read)
    if request.method == "POST":
        _require(request, can_manage_models)
        return _start_run(request)
    runs = TrainingRun.objects.select_related("requested_by", "model_version", "snapshot")[:50]
    return render(request, "registry/training_runs.html", {
        "runs": runs, "can_manage": can_manage_models(request.user), "backbones": BACKBONE_CHOICES,
    })


def _start_run(request: HttpRequest) -> HttpResponse:
    params: dict = {"backbone": request.POST.get("backbone") or "auto",
                    "finetune": request.POST.get("finetune") or "auto"}
    if request.POST.get("head_epochs"):
        params["head_epochs"] = request.POST["head_epochs"]
    try:
        run = training_run_start(requested_by=request.user, params=params)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("registry:training-runs")
    messages.success(request, f"Training run {run.pk} queued on {run.snapshot.image_count} labelled images.")
    return redirect("registry:training-run", run_id=run.pk)


@login_required
def training_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    _require(request, can_read)
    run = get_object_or_404(TrainingRun.objects.select_related("requested_by", "model_version", "snapshot"), pk=run_id)
    return render(request, "registry/training_run_detail.html", {"run": run, "can_manage": can_manage_models(request.user)})


@login_required
@require_POST
def training_run_cancel_page(request: HttpRequest, run_id: int) -> HttpResponse:
    _require(request, can_manage_models)
    run = get_object_or_404(TrainingRun, pk=run_id)
    try:
        training_run_cancel(run=run, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Cancellation of run {run.pk} requested.")
    return redirect("registry:training-run", run_id=run.pk)
