from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.ops.services.dataset_export import (
    dataset_export_filters_clean,
    dataset_export_stream,
    dataset_snapshot_stream,
)
from inspections.registry import selectors as registry_selectors


class Command(BaseCommand):
    help = ("Export the labelled images as a zip: one folder per class plus manifest.csv and manifest.json "
            "(sha256, label, split, source, external id, who labelled it and when, exclusion), and the defect "
            "boxes as annotations/coco.json (COCO) and labels/ (YOLO text, labels/classes.txt). "
            "`import_dataset DIR` reads the unzipped folder back with its splits.")

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, help="The zip file to write.")
        parser.add_argument("--split", help="Only this split (train, val or test).")
        parser.add_argument("--label", help="Only this class.")
        parser.add_argument("--snapshot", type=int, metavar="RUN_ID",
                            help="Instead: the frozen snapshot training run RUN_ID trained on.")

    def handle(self, *args, out: Path, split: str | None, label: str | None, snapshot: int | None, **options):
        try:
            if snapshot is not None:
                if split or label:
                    raise CommandError("--snapshot exports the run's whole snapshot; drop --split and --label.")
                run = registry_selectors.training_run_detail(run_id=snapshot)
                if run is None:
                    raise CommandError(f"No training run with id {snapshot}.")
                chunks = dataset_snapshot_stream(run=run)
            else:
                chunks = dataset_export_stream(filters=dataset_export_filters_clean(split=split, label=label))
        except ApplicationError as error:
            raise CommandError(error.message) from None

        partial = out.with_name(out.name + ".partial")
        try:
            with partial.open("wb") as sink:
                for chunk in chunks:
                    sink.write(chunk)
            partial.replace(out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.stdout.write(self.style.SUCCESS(f"Wrote {out} ({out.stat().st_size} bytes)."))
