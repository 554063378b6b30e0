"""Accepting an uploaded image: validate, deduplicate, store, write the row, queue inference."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from inspections.catalog.models import ImageStatus, InspectionImage, Split, image_upload_to
from inspections.catalog.services import image_validation
from inspections.queueing import inference_enqueue


@dataclass(frozen=True)
class UploadResult:
    image: InspectionImage
    created: bool


def image_upload(*, content: bytes, filename: str, uploaded_by, source: str = "", external_id: str = "",
                 enqueue: bool = True) -> UploadResult:
    """Store ``content`` as a new pending image, or return the existing image with the same bytes.

    Nothing is left behind on failure: the file is removed when the row cannot be written.
    Inference is queued only after the row is committed; with ``enqueue=False`` the caller queues
    it (``inference_enqueue``), e.g. once for all the files of a multi-file upload.

    A new image (the usual case on a line) costs one INSERT: the unique sha256 finds a duplicate,
    whose stored copy is then removed again.
    """
    source, external_id = image_validation.upload_fields_checked(source=source, external_id=external_id)
    facts = image_validation.image_facts_from_bytes(content)
    image = InspectionImage(
        sha256=facts.sha256, width=facts.width, height=facts.height, format=facts.format, mode=facts.mode,
        size_bytes=facts.size_bytes, original_name=upload_display_name(filename), source=source, external_id=external_id,
        uploaded_by=uploaded_by if getattr(uploaded_by, "is_authenticated", False) else None,
        status=ImageStatus.PENDING, split=Split.UNASSIGNED,
    )
    stored_name = default_storage.save(image_upload_to(image, f"upload.{facts.extension}"), ContentFile(content))
    image.file.name = stored_name
    try:
        with transaction.atomic():
            image.save()
            if enqueue:
                transaction.on_commit(lambda: inference_enqueue(image_ids=[image.id]))
    except IntegrityError:
        default_storage.delete(stored_name)
        existing = InspectionImage.objects.filter(sha256=facts.sha256).first()
        if existing is None:
            raise
        return UploadResult(image=existing, created=False)  # the same bytes were uploaded before
    except BaseException:
        default_storage.delete(stored_name)
        raise
    return UploadResult(image=image, created=True)


def upload_display_name(filename: str) -> str:
    """The name an upload is shown under: its base name, printable, at most 255 characters.

    Only for display: storage names are content-addressed, never taken from the client.
    """
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(ch for ch in name if ch.isprintable())[:255]
