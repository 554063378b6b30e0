"""classify/ requests (queue `line`, served by its own worker). Thin: the service does the work.

Its options (not ``acks_late``, and why) are in worker.task_options.
"""

from celery import shared_task

from inspections import task_names
from inspections.line.services.classify import classify_run
from worker.task_options import task_options


@shared_task(**task_options(task_names.CLASSIFY_IMAGES))
def classify_images(request_id: str, reply_to: str, items: list[dict], source: str = "", external_id: str = "",
                    uploaded_by_id: int | None = None, deadline_at: float | None = None, answer_ttl_s: int = 0) -> int:
    return classify_run(request_id=request_id, reply_to=reply_to, items=items, source=source,
                        external_id=external_id, uploaded_by_id=uploaded_by_id, deadline_at=deadline_at,
                        answer_ttl_s=answer_ttl_s)
