from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.registry.services.model_versions import model_version_promote, model_version_register


class Command(BaseCommand):
    help = "Register a model artefact folder (from `python -m mlcore train`) as a new version; --promote makes it active."

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
        self.stdout.write(self.style.SUCCESS(
            f"Registered v{version.number} ({version.backbone}, {len(version.classes)} classes), status {version.status}."
        ))
