from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.ops.services.backup import backup_restore, backup_verify, main_counts


class Command(BaseCommand):
    help = ("Restore a backup made by `backup_installation` into the configured database and storage: every "
            "file's sha256 is checked first, files go back through the storage (local or S3), then pg_restore "
            "(or the SQLite copy), a row-count check and `migrate`. Refuses a database that has tables unless "
            "--force. --verify only checks the backup.")

    def add_arguments(self, parser):
        parser.add_argument("backup_dir", type=Path, help="The folder `backup_installation` wrote.")
        parser.add_argument("--verify", action="store_true", help="Only check every file against the manifest.")
        parser.add_argument("--force", action="store_true",
                            help="Restore over a database that has tables, and replace stored files of the "
                                 "same name with other bytes.")

    def handle(self, *args, backup_dir: Path, verify: bool, force: bool, **options):
        try:
            if verify:
                manifest = backup_verify(backup_dir=backup_dir)
            else:
                report = backup_restore(backup_dir=backup_dir, force=force)
                manifest = report.manifest
        except ApplicationError as error:
            raise CommandError(error.message) from None
        counts = ", ".join(f"{name} {count}" for name, count in main_counts(manifest).items())
        if verify:
            self.stdout.write(self.style.SUCCESS(
                f"The backup in {backup_dir} is complete: the database and {len(manifest['files'])} stored files "
                f"match the manifest ({manifest['created_at']}; {counts})."
            ))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Restored {backup_dir}: {report.files_written} files written, {report.files_present} already "
                f"in storage; {counts}; migrated."
            ))
