from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.ops.services.backup import backup_create, main_counts


class Command(BaseCommand):
    help = ("Back up the installation into OUT_DIR while it runs: the database (pg_dump custom format, or the "
            "SQLite file), every stored file it refers to (images, model artefacts) under storage/, "
            "manifest.json with each file's size and sha256, the row counts and the schema's migrations, and "
            "manifest.sig, its HMAC-SHA256 under STEELQC_BACKUP_KEY (keep that key apart from the backups). "
            "`restore_installation OUT_DIR` puts it back; `restore_installation --verify OUT_DIR` checks it.")

    def add_arguments(self, parser):
        parser.add_argument("out_dir", type=Path, help="A new (or empty) folder to write the backup into.")
        parser.add_argument("--allow-missing", action="store_true",
                            help="Back up even when files the database refers to are missing from storage "
                                 "(they are listed under `missing` in the manifest).")

    def handle(self, *args, out_dir: Path, allow_missing: bool, **options):
        try:
            report = backup_create(out_dir=out_dir, allow_missing=allow_missing)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        manifest = report.manifest
        total = sum(entry["size"] for entry in manifest["files"])
        counts = ", ".join(f"{name} {count}" for name, count in main_counts(manifest).items())
        for name in report.missing:
            self.stderr.write(f"missing from storage: {name}")
        self.stdout.write(self.style.SUCCESS(
            f"Backed up the {manifest['database']['engine']} database ({manifest['database']['size']} bytes) and "
            f"{len(manifest['files'])} stored files ({total} bytes) to {report.path}; {counts}; signed with "
            f"backup key {report.key_id}."
        ))
