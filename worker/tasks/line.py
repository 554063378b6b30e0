"""The periodic roll-up of the line counts (queue `inference`: a few set-based statements)."""

from celery import shared_task

from inspections import task_names
from inspections.line.services.rollup import line_stats_rollup
from worker.task_options import task_options


@shared_task(**task_options(task_names.ROLLUP_LINE_STATS))
def rollup_line_stats() -> list[dict]:
    return [step.as_dict() for step in line_stats_rollup()]
