from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.catalog.models import InspectionImage
from inspections.catalog.services.box_import import REASONS, BoxSources
from inspections.catalog.services.dataset_import import dataset_import_folder
from inspections.errors import ApplicationError


class Command(BaseCommand):
    help = "Import a folder-per-class image collection (BMP, PNG, JPEG, TIFF) as labelled images. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="Folder with one sub-folder per defect class.")
        parser.add_argument("--source", default="import", help="Recorded as each image's source (default: import).")
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the database already holds images."
        )
        parser.add_argument("--boxes-voc", type=Path, metavar="DIR",
                            help="Pascal VOC XML boxes, one file per image (NEU-DET: crazing/Cr_12.bmp -> "
                                 "crazing_12.xml). Found on their own when they sit beside the images.")
        parser.add_argument("--boxes-yolo", type=Path, metavar="DIR",
                            help="YOLO text boxes ('class cx cy w h', fractions), DIR/<class>/<name>.txt. Found on "
                                 "their own beside the images or in a labels/ tree (inside, or beside images/).")
        parser.add_argument("--annotations", type=Path, metavar="ADIR",
                            help="Boxes for the images, VOC XML or YOLO text (told apart by the files in ADIR): "
                                 "--boxes-voc ADIR or --boxes-yolo ADIR.")
        parser.add_argument("--yolo-classes", metavar="A,B,C",
                            help="YOLO class names in id order (otherwise a classes.txt in the labels folder).")

    def handle(self, *args, directory: Path, source: str, if_empty: bool, boxes_voc: Path | None = None,
               boxes_yolo: Path | None = None, yolo_classes: str | None = None, annotations: Path | None = None,
               **options):
        if if_empty and InspectionImage.objects.exists():
            self.stdout.write("Images already present; nothing imported (--if-empty).")
            return
        if annotations is not None:
            if not annotations.is_dir():
                raise CommandError(f"annotations folder not found: {annotations}")
            if next(annotations.rglob("*.xml"), None) is not None:
                boxes_voc = boxes_voc or annotations
            else:
                boxes_yolo = boxes_yolo or annotations
        try:
            sources = BoxSources(voc_dir=boxes_voc, yolo_dir=boxes_yolo,
                                 yolo_classes=tuple(n for n in (yolo_classes or "").split(",") if n.strip()) or None)
            report = dataset_import_folder(root=directory, source=source, boxes=sources)
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
        self._box_report(report.boxes)
        self.stdout.write(self.style.SUCCESS(f"Imported {total_added} new images from {directory}."))

    def _box_report(self, boxes) -> None:
        if not boxes.files and not boxes.refused:
            self.stdout.write("boxes: no annotation files found with the images")
            return
        refused = sum(boxes.refused.values())
        self.stdout.write(f"boxes: {boxes.read} read on {boxes.images_with_boxes} images from {boxes.files} files, "
                          f"{refused} refused, {boxes.images_without_boxes} images without boxes"
                          + (f", {boxes.images_already_boxed} images kept the boxes they had"
                             if boxes.images_already_boxed else ""))
        for reason, count in sorted(boxes.refused.items()):
            self.stdout.write(self.style.WARNING(f"boxes refused ({REASONS[reason]}): {count}"))
        for path, why in boxes.refused_examples[:20]:
            self.stdout.write(self.style.WARNING(f"refused box: {path}: {why}"))
