from django.core.management.base import BaseCommand

from inspections.ops.services.schedules import PERIODIC_JOBS, periodic_tasks_ensure


class Command(BaseCommand):
    help = "Create the periodic jobs (sweeper, continuous learning, stale-run check) that do not exist yet."

    def handle(self, *args, **options):
        created = periodic_tasks_ensure()
        for job in PERIODIC_JOBS:
            state = "created" if job.name in created else "kept as configured"
            self.stdout.write(f"{job.name}: {state}")
