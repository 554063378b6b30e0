"""The periodic roll-up of the line counts (queue `inference`: a few set-based statements)."""

from celery import shared_task

from inspections import task_names
from inspections.line.services.rollup import line_stats_rollup


@shared_task(name=task_names.ROLLUP_LINE_STATS, time_limit=600, soft_time_limit=540, ignore_result=True)
def rollup_line_stats() -> list[dict]:
    return [step.as_dict() for step in line_stats_rollup()]
