import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from inspections.errors import ApplicationError
from inspections.management.local import LOCAL_URL
from inspections.registry.models import (
    IN_PROGRESS_STATUSES,
    ModelVersion,
    ModelVersionKind,
    ModelVersionStatus,
    TrainingRun,
    TrainingRunStatus,
    TrainingRunTrigger,
)
from inspections.registry.services.training import training_run_execute, training_run_start


def _parameter(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise CommandError(f"--param takes NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


class Command(BaseCommand):
    help = "Start a training run on the labelled images (the same as POST /api/v1/training-runs/)."

    def add_arguments(self, parser):
        parser.add_argument("--param", action="append", default=[], type=_parameter, metavar="NAME=VALUE",
                            help="Training parameter, e.g. --param backbone=efficientnet_lite0 --param head_epochs=100")
        parser.add_argument("--if-no-active", action="store_true",
                            help="Do nothing when a model version is active or a run is already queued or running.")
        parser.add_argument("--kind", choices=ModelVersionKind.values, default=ModelVersionKind.CLASSIFIER,
                            help="classifier (default), or anomaly: learn what good looks like from the no_defect images "
                                 "(its parameters: false_alarm_rate, input_size, coreset_ratio, max_memory, batch_size, seed).")
        parser.add_argument("--wait", action="store_true",
                            help="Train in this process and wait for the result instead of queueing it for a worker.")

    def handle(self, *args, param, if_no_active: bool, wait: bool, kind: str, **options):
        if if_no_active:
            if ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE, kind=kind).exists():
                self.stdout.write("A model version is active; no training started (--if-no-active).")
                return
            if TrainingRun.objects.filter(status__in=IN_PROGRESS_STATUSES).exists():
                self.stdout.write("A training run is already queued or running (--if-no-active).")
                return
        try:
            run = training_run_start(requested_by=None, params=dict(param), enqueue=not wait, kind=kind,
                                     trigger=TrainingRunTrigger.COMMAND)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if not wait:
            self.stdout.write(self.style.SUCCESS(
                f"Training run {run.pk} queued on {run.snapshot.image_count} labelled images; a training worker "
                f"picks it up; follow it at {LOCAL_URL}{reverse('registry:training-run', args=[run.pk])}."
            ))
            return
        started = time.monotonic()
        run = training_run_execute(run_id=run.pk)
        self.stdout.write(run.log)
        if run.status != TrainingRunStatus.SUCCEEDED:
            raise CommandError(f"Training run {run.pk} {run.status}: {run.error.splitlines()[0] if run.error else ''}")
        decision = run.gate_decision or {}
        figure = (f"anomaly threshold {run.model_version.metrics.get('anomaly', {}).get('threshold', 0):.4g}"
                  if kind == ModelVersionKind.ANOMALY else f"test accuracy {run.model_version.metrics.get('accuracy', 0):.4f}")
        self.stdout.write(self.style.SUCCESS(
            f"Training run {run.pk} succeeded in {time.monotonic() - started:.0f}s: version v{run.model_version.number}, "
            f"{figure}, {'promoted' if decision.get('promoted') else 'kept as candidate'}."
        ))
