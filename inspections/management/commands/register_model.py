from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.registry.models import ModelVersionKind
from inspections.registry.services.model_versions import model_version_promote, model_version_register


class Command(BaseCommand):
    help = ("Register a model artefact folder as a new version: a classifier (`python -m mlcore train`) or an anomaly "
            "model (`python -m mlcore anomaly-train`), as its config.json says; --promote makes it the active one of its kind.")

    def add_arguments(self, parser):
        parser.add_argument("model_dir", type=Path)
        parser.add_argument("--promote", action="store_true", help="Make it the active version at once (no gate).")
        parser.add_argument("--notes", default="")

    def handle(self, *args, model_dir: Path, promote: bool, notes: str, **options):
        if not model_dir.is_dir():
            raise CommandError(f"{model_dir} is not a folder.")
        try:
            version = model_version_register(model_dir=model_dir, notes=notes)
            if promote:
                version = model_version_promote(version=version)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        what = ("anomaly model" if version.kind == ModelVersionKind.ANOMALY
                else f"classifier, {len(version.classes)} classes")
        self.stdout.write(self.style.SUCCESS(
            f"Registered v{version.number} ({what}, {version.backbone}), status {version.status}."
        ))
