"""classify/ requests (queue `inference`). Thin: the service does the work.

Not ``acks_late``: a request whose worker dies is not redelivered -- its client has had a 504 by
its deadline and sends again; a stale redelivery would only classify twice.
"""

from celery import shared_task
from django.conf import settings

from inspections import task_names
from inspections.line.services.classify import classify_run


@shared_task(
    name=task_names.CLASSIFY_IMAGES,
    soft_time_limit=settings.STEELQC_INFERENCE_SOFT_TIME_LIMIT,
    time_limit=settings.STEELQC_INFERENCE_TIME_LIMIT,
    ignore_result=True,
)
def classify_images(request_id: str, reply_to: str, items: list[dict], source: str = "", external_id: str = "",
                    uploaded_by_id: int | None = None) -> int:
    return classify_run(request_id=request_id, reply_to=reply_to, items=items, source=source,
                        external_id=external_id, uploaded_by_id=uploaded_by_id)
