"""Pages for ML admins: the model registry (metrics, plots, gate decisions, promote, roll back)
and training runs (start, live progress, cancel). Everyone with a role may look; only
`ml_admin` may act, and every action is checked here, not just hidden in the template."""

from __future__ import annotations

from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inspections.access import roles
from inspections.catalog import selectors as catalog_selectors
from inspections.catalog.models import Split
from inspections.errors import ApplicationError, Conflict
from inspections.pages.access import role_required
from inspections.registry import selectors as registry_selectors
from inspections.registry.backbones import backbone_availability, backbone_choices
from inspections.registry.models import ModelVersionKind, ModelVersionStatus
from inspections.registry.pages.forms import AnomalyRunStartForm, PromoteForm, TrainingRunStartForm
from inspections.registry.pages.gate_figures import gate_class_rows, per_class_rows
from inspections.registry.pages.run_details import left_out_rows, parameter_rows, timing_context
from inspections.registry.pages.thresholds import thresholds_context
from inspections.registry.services.artefacts import model_artefact_list
from inspections.registry.services.model_versions import (gate_refusal_reasons, model_version_promote,
                                                          model_version_rollback)
from inspections.registry.services.training import training_run_cancel, training_run_start
from mlcore.artefact import PLOT_FILES

read_role = role_required(roles.can_read, "Your account has no steelqc role yet; ask an administrator for one.")
model_admin_role = role_required(roles.can_manage_models, "Managing models and training needs the role ml_admin.")


def _version_or_404(version_id: int):
    version = registry_selectors.model_version_detail(version_id=version_id)
    if version is None:
        raise Http404(f"No model version with id {version_id}.")
    return version


def _run_or_404(run_id: int):
    run = registry_selectors.training_run_detail(run_id=run_id)
    if run is None:
        raise Http404(f"No training run with id {run_id}.")
    return run


# --- Model versions ------------------------------------------------------------------------------

@require_GET
@read_role
def model_version_list(request: HttpRequest) -> HttpResponse:
    versions = list(registry_selectors.model_version_list())

    def active_of(kind: str):
        return next((v for v in versions if v.status == ModelVersionStatus.ACTIVE and v.kind == kind), None)

    def rollback_target(kind: str):
        # What model_version_rollback would re-activate: the kind's most recently promoted retired version.
        earlier = sorted((v for v in versions if v.kind == kind and v.status == ModelVersionStatus.RETIRED
                          and v.promoted_at), key=lambda v: v.promoted_at, reverse=True)
        return earlier[0] if active_of(kind) and earlier else None

    return render(request, "registry/model_versions.html", {
        "versions": versions, "active": active_of(ModelVersionKind.CLASSIFIER),
        "rollback_target": rollback_target(ModelVersionKind.CLASSIFIER),
        "active_anomaly": active_of(ModelVersionKind.ANOMALY),
        "anomaly_rollback_target": rollback_target(ModelVersionKind.ANOMALY),
        # Versions the gate refused: their Promote leads to the confirmation step that asks why.
        "refused_ids": {version.pk for version in versions if gate_refusal_reasons(version) is not None},
        "can_manage": roles.can_manage_models(request.user), "promote_form": PromoteForm(auto_id=False),
        # The dataset export's choices (GET api dataset-export/): the splits and the classes.
        "export_splits": [Split.TRAIN, Split.VAL, Split.TEST], "export_classes": catalog_selectors.defect_class_list(),
    })


@require_GET
@read_role
def model_version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(version_id)
    metrics = version.metrics or {}
    gate = metrics.get("gate")
    gate_classes = gate_class_rows(gate)
    detection = metrics.get("detection") or {}
    detection_per_class = [{"name": name, **values} for name, values in (detection.get("per_class") or {}).items()]
    can_download = roles.can_download_artefacts(request.user)
    return render(request, "registry/model_version_detail.html", {
        "version": version, "metrics": metrics, "per_class": per_class_rows(metrics.get("per_class"), gate),
        "gate": gate, "gate_classes": gate_classes, "gate_refused": gate_refusal_reasons(version) is not None,
        "unmeasured_new_classes": [row for row in gate_classes if row["new"] and not row["measured"]],
        "detection": detection, "detection_per_class": detection_per_class,
        "artefacts": model_artefact_list(version=version) if can_download else [],
        "can_manage": roles.can_manage_models(request.user), "plots": PLOT_FILES, "promote_form": PromoteForm(auto_id=False),
        **thresholds_context(request, version),
    })


@require_GET
@read_role
def model_version_plot(request: HttpRequest, version_id: int, plot: str) -> FileResponse:
    """A plot written beside the model (``PLOT_FILES``); also the dashboard's confusion matrix."""
    version = _version_or_404(version_id)
    if plot not in PLOT_FILES:
        raise Http404("No such plot.")
    name = registry_selectors.model_version_file(version=version, file_name=PLOT_FILES[plot])
    if name is None:
        raise Http404("This version has no such plot.")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=86400"  # artefacts never change
    return response


@require_http_methods(["GET", "POST"])
@model_admin_role
def model_version_promote_page(request: HttpRequest, version_id: int) -> HttpResponse:
    """POST promotes. A version the gate refused is promoted only from the confirmation step (GET):
    it shows the gate's reasons and asks why, and that reason is recorded with the promotion."""
    version = _version_or_404(version_id)
    refused = gate_refusal_reasons(version)
    form = PromoteForm(request.POST if request.method == "POST" else None, refused=refused is not None)
    if request.method == "GET" or not form.is_valid():
        return render(request, "registry/model_version_promote.html",
                      {"version": version, "refusal_reasons": refused, "promote_form": form})
    try:
        version = model_version_promote(version=version, actor=request.user,
                                        repredict_review_queue=form.cleaned_data["repredict"],
                                        override_reason=form.reason_for_override())
    except Conflict as error:
        messages.error(request, error.message)
        if error.code == "gate_refused":  # the gate refused it since the page was shown: ask for the reason
            return redirect("registry:model-version-promote", version_id=version.pk)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if version.promotion_override_at and refused is not None:
            messages.success(request, f"{version.name} is now the active version, promoted over the gate's refusal.")
            return redirect("registry:model-version", version_id=version.pk)
        messages.success(request, f"{version.name} is now the active version.")
    return redirect("registry:model-versions")


@require_POST
@model_admin_role
def model_version_rollback_page(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind") or ModelVersionKind.CLASSIFIER
    try:
        version = model_version_rollback(actor=request.user, kind=kind)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Rolled back: {version.name} is active again.")
    return redirect("registry:model-versions")


# --- Training runs -------------------------------------------------------------------------------

def _start_form(data=None) -> tuple[TrainingRunStartForm, list]:
    """The start form offering only the backbones whose weights are here, and why the others are not."""
    availability = backbone_availability()
    form = TrainingRunStartForm(data)
    form.fields["backbone"].choices = [(name, name) for name in backbone_choices(availability)]
    return form, [entry for entry in availability if not entry.available]


@require_GET
@read_role
def training_run_list(request: HttpRequest) -> HttpResponse:
    can_manage = roles.can_manage_models(request.user)
    start_form, unavailable = _start_form() if can_manage else (None, [])
    return render(request, "registry/training_runs.html", {
        "runs": registry_selectors.training_run_list()[:50], "can_manage": can_manage,
        "start_form": start_form, "unavailable_backbones": unavailable,
        "anomaly_form": AnomalyRunStartForm(auto_id="anomaly-%s") if can_manage else None,
        # What the next run would train: active classes, and collecting ones it leaves out.
        "class_readiness": list(catalog_selectors.class_readiness_list().values()),
        "readiness_rule": catalog_selectors.class_readiness_rule(),
    })


@require_POST
@model_admin_role
def training_run_start_page(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind") or ModelVersionKind.CLASSIFIER
    form = AnomalyRunStartForm(request.POST) if kind == ModelVersionKind.ANOMALY else _start_form(request.POST)[0]
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{form.fields[field].label or field}: {' '.join(errors)}" if field in form.fields
                           else " ".join(errors))
        return redirect("registry:training-runs")
    try:
        run = training_run_start(requested_by=request.user, params=form.training_parameters(), kind=kind)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("registry:training-runs")
    what = "an anomaly model from the no_defect images" if kind == ModelVersionKind.ANOMALY else "a classifier"
    messages.success(request, f"Training run {run.pk} queued: {what}, on {run.snapshot.image_count} labelled images.")
    return redirect("registry:training-run", run_id=run.pk)


@require_GET
@read_role
def training_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    return render(request, "registry/training_run_detail.html", {
        "run": run, "can_manage": roles.can_manage_models(request.user),
        "timing": timing_context(registry_selectors.training_run_timing(run=run)),
        "parameter_rows": parameter_rows(run.parameters or {}), "left_out": left_out_rows(run.parameters or {}),
        # The error's first line is for people; the traceback below it, folded, for whoever debugs.
        "error_summary": run.error.split("\n", 1)[0],
    })


@require_POST
@model_admin_role
def training_run_cancel_page(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    try:
        training_run_cancel(run=run, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Cancellation of run {run.pk} requested.")
    return redirect("registry:training-run", run_id=run.pk)
