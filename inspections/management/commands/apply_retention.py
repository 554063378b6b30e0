from django.core.management.base import BaseCommand, CommandError

from inspections.errors import ApplicationError
from inspections.line.models import RetentionTrigger
from inspections.line.services.retention_sweep import KEPT_REASONS, pending_file_deletions_count, retention_sweep


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class Command(BaseCommand):
    help = ("Delete the images each source's retention policy no longer needs: older than its keep_days and "
            "not labelled, reviewed, boxed by a person, in a dataset snapshot or split, or waiting for review; "
            "rows and stored files. --dry-run deletes nothing and says what would go and what is kept, and why.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")
        parser.add_argument("--source", help="Only this source (under the policy that governs it).")
        parser.add_argument("--limit", type=int, metavar="N",
                            help="Delete at most N images (default STEELQC_RETENTION_SWEEP_MAX_IMAGES).")

    def handle(self, *args, dry_run: bool, source: str | None, limit: int | None, **options):
        try:
            run = retention_sweep(dry_run=dry_run, source=source, limit=limit, trigger=RetentionTrigger.COMMAND)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        verb = "would delete" if dry_run else "deleted"
        if dry_run:
            self.stdout.write("Dry run: nothing is deleted.")
        for name, entry in run.per_source.items():
            label = name or "(no source)"
            if entry["keep_days"] is None:
                self.stdout.write(f"{label}: kept forever (no keep_days)")
                continue
            kept = ", ".join(f"{reason} {entry['kept'][reason]}" for reason in KEPT_REASONS if entry["kept"].get(reason))
            line = (f"{label} (keep {entry['keep_days']} days, before {entry['cutoff'][:16].replace('T', ' ')}): "
                    f"{verb} {entry['deleted']} images, {_size(entry['bytes'])}")
            self.stdout.write(line + (f"; kept: {kept}" if kept else ""))
        self.stdout.write(f"Total: {verb} {run.images_deleted} images, {_size(run.bytes_freed)}"
                          + (f" (more than one run's limit of {run.limit})" if dry_run and run.more_left else "")
                          + (" (stopped at the limit; more left for the next run)" if not dry_run and run.more_left
                             else ""))
        if not dry_run:
            self.stdout.write(f"Files deleted: {run.files_deleted}, failed (retried next run): {run.files_failed}, "
                              f"pending: {pending_file_deletions_count()}")
