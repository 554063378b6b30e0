from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.ops.services.backup import backup_restore, backup_verify, main_counts

UNSIGNED_WARNING = (
    "WARNING: --insecure-allow-unsigned: the backup's signature is not checked. Whoever could write to "
    "the backup folder could have changed its database and files, and a restore runs the database "
    "dump's definitions in your database. Go on only with a backup whose origin you know."
)


class Command(BaseCommand):
    help = ("Restore a backup made by `backup_installation` into the configured database and storage: the "
            "manifest's signature (STEELQC_BACKUP_KEY) and every file's sha256 are checked first, and a "
            "database dump holding code (functions, triggers, views) is refused; files go back through the "
            "storage (local or S3), then pg_restore as a role that is not a superuser (or the SQLite copy), a "
            "row-count check and `migrate`. Refuses a database that has tables unless --force. --verify only "
            "checks the backup.")

    def add_arguments(self, parser):
        parser.add_argument("backup_dir", type=Path, help="The folder `backup_installation` wrote.")
        parser.add_argument("--verify", action="store_true",
                            help="Only check the signature and every file against the manifest.")
        parser.add_argument("--force", action="store_true",
                            help="Restore over a database that has tables, and replace stored files of the "
                                 "same name with other bytes.")
        parser.add_argument("--insecure-allow-unsigned", action="store_true",
                            help="Accept a backup without a valid signature by this installation's backup key "
                                 "(a backup from elsewhere, or one signed with a lost key). Dangerous: nothing "
                                 "then shows the backup was not altered.")

    def handle(self, *args, backup_dir: Path, verify: bool, force: bool, insecure_allow_unsigned: bool, **options):
        if insecure_allow_unsigned:
            self.stderr.write(UNSIGNED_WARNING)
        try:
            if verify:
                manifest = backup_verify(backup_dir=backup_dir, allow_unsigned=insecure_allow_unsigned)
            else:
                report = backup_restore(backup_dir=backup_dir, force=force, allow_unsigned=insecure_allow_unsigned)
                manifest = report.manifest
        except ApplicationError as error:
            raise CommandError(error.message) from None
        counts = ", ".join(f"{name} {count}" for name, count in main_counts(manifest).items())
        checked = "" if insecure_allow_unsigned else "its signature and "
        if verify:
            self.stdout.write(self.style.SUCCESS(
                f"The backup in {backup_dir} is complete: {checked}the database and {len(manifest['files'])} stored "
                f"files match the manifest ({manifest['created_at']}; {counts})."
            ))
        else:
            role = f" pg_restore ran as role {report.restored_as}, not a superuser;" if report.restored_as else ""
            self.stdout.write(self.style.SUCCESS(
                f"Restored {backup_dir}: {report.files_written} files written, {report.files_present} already "
                f"in storage; {counts};{role} migrated."
            ))
