"""The retention sweep against the real S3-compatible server on loopback: the objects of deleted
images leave the bucket, needed images keep theirs, and an S3 outage during the deletes keeps the
rows' removal and leaves the objects for the next run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import EndpointConnectionError
from django.utils import timezone
from storages.backends.s3 import S3Storage

from inspections.catalog.services.images import image_upload
from inspections.line.services.retention_sweep import retention_sweep
from inspections.models import DefectClass, ImageStatus, InspectionImage, LabelSource, PendingFileDeletion
from tests.factories import PredictionFactory, image_bytes

pytestmark = [pytest.mark.s3, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def keep_7_days(settings):
    settings.STEELQC_RETENTION_KEEP_DAYS = 7


def _stored(seed: int, *, labelled: bool = False) -> InspectionImage:
    image = image_upload(content=image_bytes(seed=seed), filename=f"{seed}.png", uploaded_by=None, source="line-s3",
                         enqueue=False).image
    PredictionFactory(image=image)
    fields = {"status": ImageStatus.PREDICTED, "created_at": timezone.now() - timedelta(days=8)}
    if labelled:
        fields.update(label=DefectClass.objects.get_or_create(name="crazing")[0], label_source=LabelSource.IMPORT)
    InspectionImage.objects.filter(pk=image.pk).update(**fields)
    return image


def test_deleted_images_take_their_objects_out_of_the_bucket(s3_bucket):
    gone, stays = _stored(1), _stored(2, labelled=True)
    assert s3_bucket.keys() == {gone.file.name, stays.file.name}
    run = retention_sweep()
    assert (run.images_deleted, run.files_deleted, run.files_failed) == (1, 1, 0)
    assert s3_bucket.keys() == {stays.file.name}
    assert list(InspectionImage.objects.values_list("pk", flat=True)) == [stays.pk]


def test_an_s3_outage_keeps_the_rows_removal_and_the_next_run_deletes_the_objects(s3_bucket, monkeypatch):
    first, second = _stored(3), _stored(4)
    real_delete = S3Storage.delete

    def outage(storage, name):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    monkeypatch.setattr(S3Storage, "delete", outage)
    run = retention_sweep()
    assert (run.images_deleted, run.files_deleted, run.files_failed, run.error) == (2, 0, 2, "")
    assert not InspectionImage.objects.exists()
    assert s3_bucket.keys() == {first.file.name, second.file.name}
    assert set(PendingFileDeletion.objects.values_list("name", flat=True)) == {first.file.name, second.file.name}

    monkeypatch.setattr(S3Storage, "delete", real_delete)
    retry = retention_sweep()
    assert (retry.images_deleted, retry.files_deleted, retry.files_failed) == (0, 2, 0)
    assert s3_bucket.keys() == set()
    assert not PendingFileDeletion.objects.exists()
