"""`manage.py apply_retention`: the dry run says per source what would go and what is kept and
why, deleting nothing; the real run deletes and says so; bad options are refused."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from inspections.line.services.retention import retention_keep_days_set
from inspections.models import DefectClass, ImageStatus, InspectionImage, LabelSource, RetentionRun
from tests.factories import InspectionImageFactory, PredictionFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def keep_10_days(settings):
    settings.STEELQC_RETENTION_KEEP_DAYS = 10


def _image(source: str, *, days_old: int = 20, labelled: bool = False, flagged: bool = False) -> InspectionImage:
    image = InspectionImageFactory(source=source, status=ImageStatus.PREDICTED)
    PredictionFactory(image=image, needs_review=flagged, review_reasons=["foreign"] if flagged else [])
    fields = {"created_at": timezone.now() - timedelta(days=days_old)}
    if labelled:
        fields.update(label=DefectClass.objects.get_or_create(name="crazing")[0], label_source=LabelSource.IMPORT)
    InspectionImage.objects.filter(pk=image.pk).update(**fields)
    return image


def _run(*args) -> str:
    out = StringIO()
    call_command("apply_retention", *args, stdout=out)
    return out.getvalue()


def test_the_dry_run_says_what_would_go_per_source_and_why_the_rest_stays():
    doomed = [_image("line-1"), _image("line-1"), _image("line-2")]
    _image("line-1", labelled=True)
    _image("line-1", flagged=True)
    _image("line-2", days_old=2)
    retention_keep_days_set(source="line-9", keep_days="", actor=UserFactory())
    out = _run("--dry-run")
    assert "Dry run: nothing is deleted." in out
    line_1 = next(line for line in out.splitlines() if line.startswith("line-1 "))
    assert "keep 10 days" in line_1 and "would delete 2 images" in line_1
    assert "kept: labelled 1, open_review 1" in line_1
    assert "line-2 (keep 10 days" in out and "line-9: kept forever" in out
    assert "Total: would delete 3 images" in out
    assert InspectionImage.objects.count() == 6
    assert all(default_storage.exists(image.file.name) for image in doomed)
    assert RetentionRun.objects.get().dry_run


def test_the_run_deletes_and_reports_with_source_and_limit():
    _image("line-1"), _image("line-1"), _image("line-2")
    out = _run("--source", "line-1", "--limit", "1")
    assert "line-1 (keep 10 days" in out and "deleted 1 images" in out
    assert "stopped at the limit" in out and "Files deleted: 1, failed (retried next run): 0, pending: 0" in out
    assert list(InspectionImage.objects.values_list("source", flat=True).order_by("source")) == ["line-1", "line-2"]
    out = _run()
    assert "Total: deleted 2 images" in out
    assert not InspectionImage.objects.exists()
    run = RetentionRun.objects.filter(dry_run=False).first()
    assert (run.trigger, run.images_deleted) == ("command", 2)


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_a_limit_below_one_is_refused(limit):
    _image("line-1")
    with pytest.raises(CommandError, match="limit must be at least 1"):
        _run("--limit", limit)
    assert InspectionImage.objects.count() == 1
