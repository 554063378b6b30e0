"""Migration 0020's indexes of the prediction table: they exist, the B-trees they replace are gone,
and the planner can answer the application's own queries with them (EXPLAIN without ANALYZE on a
small table, sequential scans switched off: the question is whether the index fits the query,
not whether it wins on three rows; at 10 million rows see make bench-tables)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from inspections.models import Prediction
from inspections.review.selectors import image_latest_prediction
from inspections.review.services import similarity
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def _indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'inspections_prediction'")
        return dict(cursor.fetchall())


def _plan(queryset, *, bitmap_only: bool = False) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if bitmap_only:  # a BRIN index is read through a bitmap only
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_indexonlyscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def predictions():
    old, new = ModelVersionFactory(), ModelVersionFactory()
    images = [InspectionImageFactory() for _ in range(3)]
    for image in images:
        PredictionFactory(image=image, model_version=old, embedding=b"\x00\x3c" * 4)
        PredictionFactory(image=image, model_version=new, embedding=b"\x00\x3c" * 4)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inspections_prediction")
    return {"images": images, "old": old, "new": new}


def test_the_growth_indexes_exist_and_the_btrees_they_replace_are_gone():
    indexes = _indexes()
    assert "(image_id, created_at DESC, id DESC)" in indexes["prediction_image_latest"]
    assert "WHERE (embedding IS NOT NULL)" in indexes["prediction_embedded_by_version"]
    assert "USING brin (created_at)" in indexes["prediction_created_at_brin"]
    single_column_btrees = {name for name, definition in indexes.items()
                            if definition.endswith("btree (image_id)") or definition.endswith("btree (created_at)")}
    assert single_column_btrees == set()


def test_the_latest_prediction_of_an_image_is_read_from_the_index_without_sorting(predictions):
    image = predictions["images"][0]
    latest = Prediction.objects.filter(image=image).order_by("-created_at", "-id")[:1]
    plan = _plan(latest)
    assert "prediction_image_latest" in plan
    assert "Sort" not in plan
    assert image_latest_prediction(image=image).model_version == predictions["new"]


def test_the_latest_prediction_refresh_probes_the_latest_index_per_image(predictions):
    """The lookup images_latest_prediction_refresh writes onto each image (the queue's columns)."""
    from django.db.models import OuterRef, Subquery

    from inspections.models import InspectionImage

    latest = Prediction.objects.filter(image=OuterRef("pk")).order_by("-created_at", "-id")
    annotated = InspectionImage.objects.annotate(latest=Subquery(latest.values("needs_review")[:1])).order_by()
    plan = _plan(annotated)
    assert "prediction_image_latest" in plan
    assert "Sort" not in plan


def test_look_alike_search_counts_a_versions_descriptors_from_the_partial_index(predictions):
    embedded = similarity._embedded(predictions["new"])
    sql_source = embedded.values("model_version").annotate(count=Count("id"), last=Max("id")).values("count", "last")
    assert "prediction_embedded_by_version" in _plan(sql_source)
    assert embedded.aggregate(count=Count("id"))["count"] == 3


def test_a_time_window_over_predictions_can_use_the_brin_index(predictions):
    with connection.cursor() as cursor:  # on three rows the B-tree whose second column is created_at wins; the
        cursor.execute("DROP INDEX prediction_image_latest")  # test's transaction rolls the drop back
    window = Prediction.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1)).values("id")
    assert "Bitmap Index Scan on prediction_created_at_brin" in _plan(window, bitmap_only=True)
    assert window.count() == 6
