"""Training runs: start (freeze the data), execute (train, register, gate, promote), cancel.

A run trains a classifier, or (kind ``anomaly``) an anomaly model from the no_defect images
(``anomaly_training.py`` holds what differs); both kinds share the queue, one run at a time.

One run at a time: the database refuses a second queued/running run. A run trains on the
dataset snapshot frozen when it was requested, so later labels never leak into it, and a
crash marks the run failed without touching the active model version.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
import traceback
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from inspections.catalog.models import NO_DEFECT_CLASS, InspectionImage, Split
from inspections.catalog.selectors import box_tuples_for_images, class_readiness_rule
from inspections.catalog.services.stored_files import local_copies
from inspections.catalog.services.suspects import suspect_labels_flag, suspects_read
from inspections.errors import ApplicationError, Conflict
from inspections.queueing import training_run_enqueue
from inspections.registry.models import (
    IN_PROGRESS_STATUSES,
    DatasetSnapshot,
    DatasetSnapshotItem,
    ModelVersionKind,
    TrainingRun,
    TrainingRunStatus,
    TrainingRunTrigger,
)
from inspections.registry.services.model_versions import model_version_register
from inspections.registry.run_timeline import GATE, phase_log_line
from inspections.registry.services.anomaly_training import (
    anomaly_gate_and_promote,
    anomaly_parameters_clean,
    anomaly_run_train,
    anomaly_snapshot_check,
)
from inspections.registry.services.promotion import gate_and_promote
from mlcore.readiness import COLLECTING, ClassImages, ClassReadiness, class_readiness
from mlcore.training import parameters as training_parameters

logger = logging.getLogger(__name__)

# In a run's stored parameters: the collecting classes its snapshot left out, and why. Not a
# training parameter: it is recorded, never passed to mlcore.
LEFT_OUT_KEY = "left_out_classes"


def _installation_defaults() -> dict:
    return {"backbone": settings.STEELQC_BACKBONE, **settings.STEELQC_TRAINING_DEFAULTS}


def training_parameters_defaults() -> dict:
    """What a run gets for each parameter it does not set: ``STEELQC_TRAINING_DEFAULTS``, then
    ``STEELQC_BACKBONE``, then mlcore's defaults. As configured, unchecked: the start-up check
    (inspections.E001) names a bad one."""
    return {**{p.name: p.default for p in training_parameters.PARAMETERS}, **_installation_defaults()}


def training_parameters_clean(params: dict | None) -> dict:
    """The run's parameters over the installation's defaults, checked against mlcore's parameter
    schema; refused with ``invalid_parameter`` (400) naming the first bad one. The modes (the
    schema's choices) are always recorded; other parameters only when set."""
    modes = {p.name: p.default for p in training_parameters.PARAMETERS if p.kind == training_parameters.CHOICE}
    try:
        return training_parameters.parameters_clean({**modes, **_installation_defaults(), **(params or {})})
    except training_parameters.ParameterError as error:
        raise ApplicationError(error.message, code="invalid_parameter", details=error.details) from None


def _snapshot_freeze(*, kind: str = ModelVersionKind.CLASSIFIER) -> tuple[DatasetSnapshot, dict[str, ClassReadiness]]:
    """Freeze the labelled images of the classes ready to train; also return the collecting
    classes whose images were kept out (name -> why), so the run can say so. An anomaly run
    keeps every class: it learns from no_defect only, and any labelled defect is evidence for its
    gate, collecting or not."""
    rows = list(
        InspectionImage.objects.filter(label__isnull=False, label__active=True, excluded=False)
        .exclude(split=Split.UNASSIGNED)
        .order_by("id")
        .values_list("id", "sha256", "label_id", "label__name", "split")
    )
    left_out = _collecting_classes(rows) if kind == ModelVersionKind.CLASSIFIER else {}
    rows = [row for row in rows if row[3] not in left_out]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    digest = hashlib.sha256()
    for _, sha, _, label, split in rows:
        counts[label][split] += 1
        digest.update(f"{sha}:{label}:{split}\n".encode())
    snapshot = DatasetSnapshot.objects.create(
        image_count=len(rows), counts={k: dict(v) for k, v in counts.items()}, checksum=digest.hexdigest()
    )
    DatasetSnapshotItem.objects.bulk_create(
        [DatasetSnapshotItem(snapshot=snapshot, image_id=i, label_id=l, split=s) for i, _, l, _, s in rows],
        batch_size=2000,
    )
    return snapshot, left_out


def _collecting_classes(rows: list[tuple]) -> dict[str, ClassReadiness]:
    """The classes among the labelled rows that are still collecting under the installation's rule
    (the same rule and counts as the class list's ``status``)."""
    per_class: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, _, _, label, split in rows:
        per_class[label][split] += 1
    readiness = class_readiness(
        counts={label: ClassImages(train=n["train"], val=n["val"], test=n["test"]) for label, n in per_class.items()},
        rule=class_readiness_rule(),
    )
    return {label: ready for label, ready in readiness.items() if ready.status == COLLECTING}


def _left_out_record(left_out: dict[str, ClassReadiness]) -> dict[str, dict]:
    return {name: {"train_images": r.train_images, "test_images": r.test_images, "images_needed": r.images_needed,
                   "reason": r.sentence} for name, r in sorted(left_out.items())}


def _with_left_out(parameters: dict, left_out: dict[str, ClassReadiness]) -> dict:
    """The run's stored parameters, with the collecting classes it left out under ``left_out_classes``."""
    return {**parameters, LEFT_OUT_KEY: _left_out_record(left_out)} if left_out else parameters


def _left_out_line(left_out: dict[str, ClassReadiness]) -> str:
    if not left_out:
        return "every labelled class is ready to train"
    return "left out, still collecting: " + "; ".join(r.sentence for _, r in sorted(left_out.items()))


def _check_snapshot_trainable(snapshot: DatasetSnapshot, left_out: dict[str, ClassReadiness]) -> None:
    details = {"counts": snapshot.counts, "collecting": _left_out_record(left_out)}
    classes = {label: splits for label, splits in snapshot.counts.items() if splits.get("train")}
    if len(classes) < 2:
        ready = f"{len(classes)} {'is' if len(classes) == 1 else 'are'} ready ({', '.join(sorted(classes)) or 'none'})"
        collecting = (f" Still collecting: {'; '.join(r.sentence for _, r in sorted(left_out.items()))}."
                      if left_out else "")
        raise ApplicationError(f"Training needs at least two classes ready to train; {ready}.{collecting}",
                               code="not_enough_data", details=details)
    if not any(splits.get("val") for splits in snapshot.counts.values()):
        raise ApplicationError("Training needs labelled validation images.", code="not_enough_data", details=details)


def training_run_start(*, requested_by, params: dict | None = None, trigger: str = TrainingRunTrigger.MANUAL,
                       enqueue: bool = True, kind: str = ModelVersionKind.CLASSIFIER) -> TrainingRun:
    """Freeze the labelled data and queue a run of ``kind`` (a classifier, or an anomaly model from
    the no_defect images). Refused (409) while another run is queued or running.

    ``enqueue=False`` leaves the run for the caller to execute in-process (command line ``--wait``).
    """
    if kind not in ModelVersionKind.values:
        raise ApplicationError(f"Unknown model kind {kind!r}; one of {', '.join(ModelVersionKind.values)}.",
                               code="invalid_kind")
    anomaly = kind == ModelVersionKind.ANOMALY
    cleaned = anomaly_parameters_clean(params) if anomaly else training_parameters_clean(params)
    try:
        with transaction.atomic():
            if TrainingRun.objects.filter(status__in=IN_PROGRESS_STATUSES).exists():
                raise IntegrityError("a run is in progress")
            snapshot, left_out = _snapshot_freeze(kind=kind)
            if anomaly:
                anomaly_snapshot_check(snapshot, parameters=cleaned)
            else:
                _check_snapshot_trainable(snapshot, left_out)
            run = TrainingRun.objects.create(
                kind=kind, status=TrainingRunStatus.QUEUED, parameters=_with_left_out(cleaned, left_out), trigger=trigger,
                requested_by=requested_by if getattr(requested_by, "is_authenticated", False) else None,
                snapshot=snapshot, log=f"{timezone.now():%H:%M:%S} {_left_out_line(left_out)}\n",
            )
            if enqueue:
                transaction.on_commit(lambda: _queue(run.id))
    except IntegrityError:
        current = TrainingRun.objects.filter(status__in=IN_PROGRESS_STATUSES).first()
        raise Conflict(
            "A training run is already queued or running; one runs at a time. Cancel it or wait for it to finish.",
            code="training_in_progress", details={"run": getattr(current, "id", None)},
        ) from None
    return run


def _queue(run_id: int) -> None:
    if not training_run_enqueue(run_id=run_id):
        _finish(run_id, status=TrainingRunStatus.FAILED, error="The training queue could not be reached.")


def training_run_cancel(*, run: TrainingRun, actor=None) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next progress report.
    ``actor`` is recorded as who cancelled it, with the time it was asked."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status not in IN_PROGRESS_STATUSES:
            raise Conflict(f"Run {run.pk} is {run.status}; only a queued or running run can be cancelled.",
                                   code="not_cancellable")
        run.cancel_requested = True
        run.cancelled_at = timezone.now()
        run.cancelled_by = actor if getattr(actor, "is_authenticated", False) else None
        if run.status == TrainingRunStatus.QUEUED:
            run.status = TrainingRunStatus.CANCELLED
            run.finished_at = run.cancelled_at
        run.save(update_fields=["cancel_requested", "cancelled_at", "cancelled_by", "status", "finished_at"])
    return run


def _finish(run_id: int, *, status: str, error: str = "", **fields) -> None:
    TrainingRun.objects.filter(pk=run_id).update(status=status, error=error, finished_at=timezone.now(), **fields)


class _RunReporter:
    """Writes progress, log lines and a heartbeat to the run row, at most about once a second."""

    def __init__(self, run_id: int, interval_s: float = 1.0):
        self.run_id = run_id
        self.interval_s = interval_s
        self.last_write = 0.0
        self.last_phase = ""
        self.cancel_requested = False

    def log(self, line: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        TrainingRun.objects.filter(pk=self.run_id).update(
            log=Concat(F("log"), Value(f"{stamp} {line}\n")), heartbeat_at=timezone.now()
        )

    def progress(self, fraction: float, info: dict) -> None:
        phase = str(info.get("phase") or "")
        now = time.monotonic()
        if phase == self.last_phase and now - self.last_write < self.interval_s:
            return
        if phase != self.last_phase:
            self.log(phase_log_line(phase))
        self.last_phase, self.last_write = phase, now
        epoch = info.get("epoch")
        TrainingRun.objects.filter(pk=self.run_id).update(
            progress=min(max(float(fraction), 0.0), 0.99), phase=f"{phase} epoch {epoch}" if epoch else phase,
            heartbeat_at=timezone.now(),
        )
        self.cancel_requested = TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()

    def should_cancel(self) -> bool:
        return self.cancel_requested


def _train_config(params: dict):
    params = {name: value for name, value in params.items() if name != LEFT_OUT_KEY}
    return training_parameters.train_config(params, resnet50_weights=settings.STEELQC_RESNET50_WEIGHTS or None,
                                            cache_dir=settings.STEELQC_CACHE_DIR)


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Run a queued training run to its end. Safe to call twice: only a queued run starts."""
    started = TrainingRun.objects.filter(pk=run_id, status=TrainingRunStatus.QUEUED).update(
        status=TrainingRunStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now(), progress=0.0
    )
    if not started:
        logger.info("training run %s is not queued; nothing to do", run_id)
        return None
    run = TrainingRun.objects.select_related("snapshot", "requested_by").get(pk=run_id)
    reporter = _RunReporter(run_id)
    try:
        if run.kind == ModelVersionKind.ANOMALY:
            _execute_anomaly(run, reporter)
        else:
            _execute(run, reporter)
    except Exception as error:
        from mlcore.training import TrainingCancelled

        if isinstance(error, TrainingCancelled):
            _finish(run_id, status=TrainingRunStatus.CANCELLED)
            reporter.log("cancelled")
        else:
            logger.exception("training run %s failed", run_id)
            _finish(run_id, status=TrainingRunStatus.FAILED,
                    error=f"{type(error).__name__}: {error}\n\n{traceback.format_exc()[-4000:]}")
            reporter.log(f"failed: {type(error).__name__}: {error}")
    return TrainingRun.objects.get(pk=run_id)


def _execute(run: TrainingRun, reporter: _RunReporter) -> None:
    from mlcore.io import Sample
    from mlcore.training import train

    items = list(run.snapshot.items.select_related("image", "label").order_by("id"))
    parameters = {name: value for name, value in run.parameters.items() if name != LEFT_OUT_KEY}
    left_out = sorted(run.parameters.get(LEFT_OUT_KEY) or {})
    reporter.log(f"training on snapshot {run.snapshot_id}: {len(items)} images, parameters {parameters}"
                 + (f", left out (collecting): {', '.join(left_out)}" if left_out else ""))
    with tempfile.TemporaryDirectory(prefix=f"steelqc-run-{run.pk}-") as workdir:
        paths = local_copies(names=[item.image.file.name for item in items], folder=Path(workdir) / "images")
        # What the detection head trains on: a frame labelled no_defect without boxes is a known-empty
        # frame; any other frame without boxes is left out of detection training.
        boxes = box_tuples_for_images(image_ids=[item.image_id for item in items])
        samples = [Sample(path=str(paths[item.image.file.name]), label=item.label.name, split=item.split,
                          boxes=boxes.get(item.image_id, () if item.label.name == NO_DEFECT_CLASS else None))
                   for item in items]
        out_dir = Path(workdir) / "model"
        result = train(_train_config(run.parameters), samples, out_dir=out_dir,
                       progress=reporter.progress, should_cancel=reporter.should_cancel)
        reporter.log(f"trained: test accuracy {result.metrics.get('accuracy', 0):.4f}")
        version = model_version_register(model_dir=out_dir, created_by=run.requested_by, notes=f"training run {run.pk}"
                                         + (f"; left out (collecting): {', '.join(left_out)}" if left_out else ""))
        suspects = suspects_read(model_dir=out_dir, image_ids_by_path={
            str(paths[item.image.file.name]): item.image_id for item in items})
    TrainingRun.objects.filter(pk=run.pk).update(model_version=version, progress=0.99, phase=GATE)
    reporter.log(phase_log_line(GATE))
    decision = gate_and_promote(candidate=version, snapshot=run.snapshot, actor=run.requested_by)
    reporter.log("promoted" if decision["promoted"] else "kept as candidate: " + "; ".join(decision["reasons"]))
    _finish(run.pk, status=TrainingRunStatus.SUCCEEDED, gate_decision=decision, progress=1.0, phase="done")
    if decision["promoted"]:
        flagged = suspect_labels_flag(image_ids=[item.image_id for item in items], flagged=suspects, run_id=run.pk)
        reporter.log(f"{flagged} suspect label(s) sent to review")
    else:
        reporter.log(f"{len(suspects)} suspect label(s) not sent to review: the gate kept this version as a "
                     "candidate, so the suspicions of the run behind the version in service stand")


def _execute_anomaly(run: TrainingRun, reporter: _RunReporter) -> None:
    version = anomaly_run_train(run=run, reporter=reporter)
    TrainingRun.objects.filter(pk=run.pk).update(model_version=version, progress=0.99, phase=GATE)
    reporter.log(phase_log_line(GATE))
    decision = anomaly_gate_and_promote(candidate=version, snapshot=run.snapshot, actor=run.requested_by)
    reporter.log("promoted" if decision["promoted"] else "kept as candidate: " + "; ".join(decision["reasons"]))
    _finish(run.pk, status=TrainingRunStatus.SUCCEEDED, gate_decision=decision, progress=1.0, phase="done")


def training_runs_fail_stale(*, older_than_s: float) -> int:
    """Mark running runs whose worker stopped reporting (killed, machine lost) as failed."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    return TrainingRun.objects.filter(status=TrainingRunStatus.RUNNING, heartbeat_at__lt=cutoff).update(
        status=TrainingRunStatus.FAILED, finished_at=timezone.now(),
        error=f"The worker running this training stopped reporting for more than {int(older_than_s)} s.",
    )
