from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.models import InspectionImage
from inspections.services.dataset_import import dataset_import_folder


class Command(BaseCommand):
    help = "Import a folder-per-class image collection (BMP, PNG, JPEG, TIFF) as labelled images. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="Folder with one sub-folder per defect class.")
        parser.add_argument("--source", default="import", help="Recorded as each image's source (default: import).")
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the database already holds images."
        )

    def handle(self, *args, directory: Path, source: str, if_empty: bool, **options):
        if if_empty and InspectionImage.objects.exists():
            self.stdout.write("Images already present; nothing imported (--if-empty).")
            return
        try:
            report = dataset_import_folder(root=directory, source=source)
        except ApplicationError as error:
            raise CommandError(error.message) from None

        width = max([len(label) for label in report.found] + [5])
        self.stdout.write(f"{'class':<{width}}  found  added  present")
        for label in sorted(report.found):
            self.stdout.write(
                f"{label:<{width}}  {report.found[label]:>5}  {report.added[label]:>5}  {report.already_present[label]:>7}"
            )
        total_added = sum(report.added.values())
        self.stdout.write(
            f"{'total':<{width}}  {sum(report.found.values()):>5}  {total_added:>5}  {sum(report.already_present.values()):>7}"
        )
        for duplicate, original in report.duplicates:
            self.stdout.write(f"duplicate: {duplicate} has the same bytes as {original} (imported once)")
        for path, reason in report.refused:
            self.stdout.write(self.style.WARNING(f"refused: {path}: {reason}"))
        if report.splits:
            self.stdout.write("new splits: " + ", ".join(f"{k} {v}" for k, v in sorted(report.splits.items())))
        self.stdout.write(self.style.SUCCESS(f"Imported {total_added} new images from {directory}."))
