"""The retention sweep on real PostgreSQL and real files on local storage: expired images nobody
needs go, rows and files together; nothing a person or a model version needs is ever deleted;
a dry run deletes nothing; a failed file delete neither keeps the row nor stops the run."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connection, transaction
from django.utils import timezone

from inspections.catalog.services.images import image_upload
from inspections.errors import ApplicationError
from inspections.line.services.retention import retention_keep_days_set
from inspections.line.services.retention_sweep import (
    KEPT_BOXED,
    KEPT_LABELLED,
    KEPT_NOT_PREDICTED,
    KEPT_OPEN_REVIEW,
    KEPT_REVIEWED,
    KEPT_SNAPSHOT,
    KEPT_SPLIT,
    RETENTION_SWEEP_LOCK,
    Scope,
    _unneeded,
    expired_candidates,
    retention_next_run,
    retention_sweep,
)
from inspections.models import (
    BoxSource,
    DatasetSnapshot,
    DatasetSnapshotItem,
    DefectBox,
    DefectBoxChange,
    DefectClass,
    ImageStatus,
    InspectionImage,
    LabelSource,
    PendingFileDeletion,
    Prediction,
    RetentionPolicy,
    RetentionRun,
    Split,
)
from inspections.review.services.reviews import review_exclude, review_include, review_submit
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory, UserFactory, image_bytes

# Transactional: the sweep commits batch by batch and deletes files after each commit.
pytestmark = pytest.mark.django_db(transaction=True)


def _class(name: str = "crazing") -> DefectClass:
    return DefectClass.objects.get_or_create(name=name)[0]


@pytest.fixture(autouse=True)
def keep_30_days(settings):
    for name in ("crazing", "inclusion"):  # a transactional test starts without the migrated classes
        _class(name)
    settings.STEELQC_RETENTION_KEEP_DAYS = 30
    settings.STEELQC_RETENTION_SWEEP_BATCH = 3  # several batches even with a handful of images


def _image(*, days_old: float = 40, source: str = "line-1", status: str = ImageStatus.PREDICTED,
           needs_review: bool = False, **fields) -> InspectionImage:
    """A stored image ``days_old`` days old with one prediction (confident unless ``needs_review``)."""
    image = InspectionImageFactory(source=source, status=status, **fields)
    if status == ImageStatus.PREDICTED:
        PredictionFactory(image=image, needs_review=needs_review,
                          review_reasons=["low_confidence"] if needs_review else [])
    InspectionImage.objects.filter(pk=image.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    image.refresh_from_db()
    assert default_storage.exists(image.file.name)
    return image


def _gone(image: InspectionImage) -> bool:
    return not InspectionImage.objects.filter(pk=image.pk).exists() and not default_storage.exists(image.file.name)


def _kept(image: InspectionImage) -> bool:
    return InspectionImage.objects.filter(pk=image.pk).exists() and default_storage.exists(image.file.name)


def test_an_expired_image_nobody_needs_goes_with_its_file_prediction_and_model_boxes():
    image = _image(days_old=31)
    version = ModelVersionFactory()
    DefectBox.objects.create(image=image, label=_class(), x0=0, y0=0, x1=0.5, y1=0.5,
                             source=BoxSource.MODEL, model_version=version)
    run = retention_sweep()
    assert _gone(image)
    assert not Prediction.objects.filter(image_id=image.pk).exists()
    assert not DefectBox.objects.filter(image_id=image.pk).exists()
    assert not PendingFileDeletion.objects.exists()
    assert (run.images_deleted, run.bytes_freed, run.files_deleted, run.files_failed) == (
        1, image.size_bytes, 1, 0)
    assert run.per_source["line-1"]["deleted"] == 1 and run.per_source["line-1"]["keep_days"] == 30
    assert RetentionRun.objects.get(pk=run.pk).finished_at is not None


def test_images_younger_than_keep_days_stay():
    young, old = _image(days_old=29), _image(days_old=31)
    retention_sweep()
    assert _kept(young) and _gone(old)


def _labelled_by_import(image):
    InspectionImage.objects.filter(pk=image.pk).update(label=_class(),
                                                       label_source=LabelSource.IMPORT)


def _labelled_by_review(image):
    review_submit(image=image, label_name="inclusion", reviewer=UserFactory(roles=["qa"]))


def _excluded(image):
    review_exclude(image=image, reviewer=UserFactory(roles=["qa"]), reason="camera fault")


def _excluded_then_included(image):
    qa = UserFactory(roles=["qa"])
    review_exclude(image=image, reviewer=qa, reason="camera fault")
    review_include(image=InspectionImage.objects.get(pk=image.pk), reviewer=qa)


def _box(source, *, by_person=False):
    def make(image):
        DefectBox.objects.create(image=image, label=_class(), x0=0.1, y0=0.1, x1=0.4,
                                 y1=0.4, source=source, created_by=UserFactory() if by_person else None,
                                 model_version=ModelVersionFactory() if source == BoxSource.MODEL else None)
    return make


def _box_history_only(image):
    box = DefectBox.objects.create(image=image, label=_class(), x0=0.1, y0=0.1,
                                   x1=0.4, y1=0.4, source=BoxSource.PERSON, deleted_at=timezone.now())
    DefectBoxChange.objects.create(box=box, image=image, action="drawn", after={"label": "crazing"},
                                   changed_by=UserFactory(), boxes_version=1)
    DefectBox.objects.filter(pk=box.pk).update(source=BoxSource.MODEL, model_version=ModelVersionFactory())


def _in_snapshot(image):
    snapshot = DatasetSnapshot.objects.create(image_count=1, checksum="0" * 64)
    DatasetSnapshotItem.objects.create(snapshot=snapshot, image=image, label=_class(),
                                       split=Split.TEST)


def _split(image):
    InspectionImage.objects.filter(pk=image.pk).update(split=Split.TEST)


def _queued_for_review(image):
    PredictionFactory(image=image, needs_review=True, review_reasons=["foreign"])


NEEDED = {
    "label from an import": (_labelled_by_import, KEPT_LABELLED),
    "label from a review": (_labelled_by_review, KEPT_LABELLED),
    "excluded by a person": (_excluded, KEPT_REVIEWED),
    "excluded, then included again": (_excluded_then_included, KEPT_REVIEWED),
    "box drawn by a person": (_box(BoxSource.PERSON, by_person=True), KEPT_BOXED),
    "box from an import": (_box(BoxSource.IMPORT), KEPT_BOXED),
    "model box a person accepted": (_box(BoxSource.MODEL, by_person=True), KEPT_BOXED),
    "box history only": (_box_history_only, KEPT_BOXED),
    "in a training snapshot": (_in_snapshot, KEPT_SNAPSHOT),
    "given a split": (_split, KEPT_SPLIT),
    "waiting in the review queue": (_queued_for_review, KEPT_OPEN_REVIEW),
}


@pytest.mark.parametrize("make_needed, reason", list(NEEDED.values()), ids=list(NEEDED))
def test_nothing_a_person_or_a_model_version_needs_is_ever_deleted(make_needed, reason):
    needed, unneeded = _image(days_old=400), _image(days_old=400)
    make_needed(needed)
    dry = retention_sweep(dry_run=True)
    assert dry.per_source["line-1"]["kept"] == {reason: 1}
    assert dry.per_source["line-1"]["deleted"] == 1
    run = retention_sweep()
    assert _kept(needed), reason
    assert _gone(unneeded)
    assert run.images_deleted == 1


@pytest.mark.parametrize("status", [ImageStatus.PENDING, ImageStatus.FAILED])
def test_images_not_predicted_wait_for_inference_or_a_person(status):
    waiting = _image(days_old=400, status=status)
    dry = retention_sweep(dry_run=True)
    assert dry.per_source["line-1"]["kept"] == {KEPT_NOT_PREDICTED: 1}
    retention_sweep()
    assert _kept(waiting)


def test_a_review_after_the_sweep_selected_the_image_keeps_it(monkeypatch):
    """The candidates are checked again once locked: a label committed in between wins."""
    image = _image(days_old=400)
    from inspections.line.services import retention_sweep as sweep_module

    real = sweep_module.expired_candidates

    def select_then_review(*, scope, now):
        candidates = list(real(scope=scope, now=now).values_list("id", flat=True))
        if candidates:  # a reviewer labels it after the sweep's first query ran
            InspectionImage.objects.filter(pk=image.pk).update(label=_class(),
                                                               label_source=LabelSource.IMPORT)
        return InspectionImage.objects.filter(pk__in=candidates).order_by("created_at", "id")

    monkeypatch.setattr(sweep_module, "expired_candidates", select_then_review)
    run = retention_sweep()
    assert _kept(image)
    assert run.images_deleted == 0


def test_a_dry_run_deletes_nothing_and_says_what_would_go():
    images = [_image(days_old=40) for _ in range(4)]
    flagged = _image(days_old=40, needs_review=True)
    other = _image(days_old=40, source="line-2")
    run = retention_sweep(dry_run=True, limit=3)
    assert all(_kept(image) for image in [*images, flagged, other])
    assert run.dry_run and run.more_left
    assert run.images_deleted == 5 and run.bytes_freed == sum(i.size_bytes for i in [*images, other])
    assert run.per_source["line-1"]["deleted"] == 4
    assert run.per_source["line-1"]["kept"] == {KEPT_OPEN_REVIEW: 1}
    assert run.per_source["line-2"]["deleted"] == 1
    assert not PendingFileDeletion.objects.exists()


def test_each_source_follows_its_own_policy_and_blank_keeps_forever():
    admin = UserFactory(roles=["ml_admin"])
    retention_keep_days_set(source="line-fast", keep_days="2", actor=admin)
    retention_keep_days_set(source="line-audit", keep_days="", actor=admin)
    fast, audit, default = (_image(days_old=3, source="line-fast"), _image(days_old=4000, source="line-audit"),
                            _image(days_old=3, source="line-3"))
    assert RetentionPolicy.objects.get(source="line-audit").keep_days is None
    run = retention_sweep()
    assert _gone(fast)
    assert _kept(audit) and _kept(default)  # the default (30 days) governs line-3
    assert run.images_deleted == 1
    dry = retention_sweep(dry_run=True)
    assert dry.per_source["line-audit"] == {"keep_days": None, "cutoff": None, "deleted": 0, "bytes": 0, "kept": {}}


def test_keep_days_is_validated():
    admin = UserFactory(roles=["ml_admin"])
    for bad in ("0", "-3", "soon", "36501"):
        with pytest.raises(ApplicationError) as refused:
            retention_keep_days_set(source="line-x", keep_days=bad, actor=admin)
        assert refused.value.code == "invalid_policy"
    assert not RetentionPolicy.objects.exists()


def test_the_source_option_sweeps_one_source_only():
    one, two = _image(days_old=40, source="line-1"), _image(days_old=40, source="line-2")
    run = retention_sweep(source="line-2")
    assert _kept(one) and _gone(two)
    assert run.source_filter == "line-2"


def test_a_run_stops_at_its_limit_and_the_next_one_continues():
    images = [_image(days_old=40 + i) for i in range(5)]
    first = retention_sweep(limit=2)
    assert first.images_deleted == 2 and first.more_left
    assert [_gone(image) for image in images] == [False, False, False, True, True]  # oldest first
    second = retention_sweep()
    assert second.images_deleted == 3 and not second.more_left
    assert all(_gone(image) for image in images)


def test_a_failed_file_delete_does_not_keep_the_row_nor_stop_the_run(monkeypatch):
    broken, fine = _image(days_old=41), _image(days_old=40)
    real_delete = FileSystemStorage.delete

    def flaky_delete(storage, name):
        if name == broken.file.name:
            raise OSError("device busy")
        return real_delete(storage, name)

    monkeypatch.setattr(FileSystemStorage, "delete", flaky_delete)
    run = retention_sweep()
    assert run.images_deleted == 2 and (run.files_deleted, run.files_failed) == (1, 1)
    assert not InspectionImage.objects.filter(pk__in=[broken.pk, fine.pk]).exists()
    assert default_storage.exists(broken.file.name) and not default_storage.exists(fine.file.name)
    pending = PendingFileDeletion.objects.get()
    assert (pending.name, pending.attempts, pending.last_error) == (broken.file.name, 1, "device busy")

    monkeypatch.setattr(FileSystemStorage, "delete", real_delete)
    retry = retention_sweep()
    assert (retry.images_deleted, retry.files_deleted, retry.files_failed) == (0, 1, 0)
    assert not default_storage.exists(broken.file.name)
    assert not PendingFileDeletion.objects.exists()


def test_the_same_bytes_uploaded_again_keep_their_new_file(monkeypatch, no_queue):
    content = image_bytes(seed=4242)
    first = image_upload(content=content, filename="a.png", uploaded_by=None, source="line-1").image
    InspectionImage.objects.filter(pk=first.pk).update(status=ImageStatus.PREDICTED,
                                                       created_at=timezone.now() - timedelta(days=90))
    real_delete = FileSystemStorage.delete

    def storage_down(storage, name):
        raise OSError("down")

    monkeypatch.setattr(FileSystemStorage, "delete", storage_down)
    retention_sweep()
    assert PendingFileDeletion.objects.filter(name=first.file.name).exists()
    again = image_upload(content=content, filename="b.png", uploaded_by=None, source="line-1").image
    monkeypatch.setattr(FileSystemStorage, "delete", real_delete)
    InspectionImage.objects.filter(pk=again.pk).update(file=first.file.name)  # the worst case: the same name
    retention_sweep()
    assert InspectionImage.objects.filter(pk=again.pk).exists()
    assert default_storage.exists(first.file.name)
    assert not PendingFileDeletion.objects.exists()


def test_only_one_sweep_runs_at_a_time():
    from django.conf import settings

    db = settings.DATABASES["default"]
    other = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                            dbname=connection.settings_dict["NAME"], autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [RETENTION_SWEEP_LOCK])
        with pytest.raises(ApplicationError) as refused:
            retention_sweep()
        assert refused.value.code == "retention_running"
        assert retention_sweep(dry_run=True).dry_run  # counting needs no lock
    finally:
        other.close()


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is tiny; ask whether indexes can serve
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_sweep_queries_can_be_served_by_indexes_alone():
    now = timezone.now()
    own = _plan(expired_candidates(scope=Scope(source="line-1", keep_days=30), now=now).values_list("id")[:500])
    assert "image_source_created_at" in own and "Seq Scan" not in own, own
    default = _plan(expired_candidates(scope=Scope(source="", keep_days=30, others=("line-1",)), now=now)
                    .values_list("id")[:500])
    assert "Seq Scan" not in default, default
    recheck = _plan(_unneeded(list(range(1, 501))).values_list("id"))
    assert "Seq Scan" not in recheck, recheck


def test_the_next_run_preview_counts_up_to_the_limit():
    for i in range(4):
        _image(days_old=40 + i)
    _image(days_old=40, source="line-2")
    preview = retention_next_run(limit=3)
    assert (preview["images"], preview["more_left"]) == (3, True)
    assert sum(entry["images"] for entry in preview["per_source"].values()) == 3
    exact = retention_next_run(limit=5)
    assert (exact["images"], exact["more_left"]) == (5, False)
    full = retention_next_run(limit=100)
    assert (full["images"], full["more_left"]) == (5, False)
    assert full["per_source"]["line-2"] == {"images": 1, "bytes": full["per_source"]["line-2"]["bytes"],
                                            "keep_days": 30}
    assert InspectionImage.objects.count() == 5
