# The latest prediction's facts kept on the image (the review queue and the prediction filters read
# them from the image row, served by the partial index image_review_queue). The plans and timings:
# make bench-tables (docs/benchmarks.md, bench-tables section).

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Case, OuterRef, Subquery, Value, When

BATCH = 50_000  # images per transaction: short locks, bounded WAL per commit

# One statement per batch of image ids on PostgreSQL: DISTINCT ON walks prediction_image_latest
# (image, newest first) once; images without a prediction keep their nulls.
FILL_SQL = """
UPDATE inspections_inspectionimage AS im
SET latest_prediction_id = p.id, latest_needs_review = p.needs_review, latest_margin = p.margin,
    latest_label_id = p.label_id, latest_model_version_id = p.model_version_id,
    latest_review_reasons = p.review_reasons,
    needs_attention = CASE WHEN im.suspect_suggestion_id IS NOT NULL THEN TRUE ELSE p.needs_review END
FROM (
    SELECT DISTINCT ON (image_id) image_id, id, needs_review, margin, label_id, model_version_id, review_reasons
    FROM inspections_prediction WHERE image_id >= %s AND image_id < %s
    ORDER BY image_id, created_at DESC, id DESC
) AS p
WHERE im.id = p.image_id
"""
# A suspect label waits for a person whether or not the image has a prediction.
SUSPECT_SQL = ("UPDATE inspections_inspectionimage SET needs_attention = TRUE"
               " WHERE suspect_suggestion_id IS NOT NULL AND needs_attention IS NOT TRUE AND id >= %s AND id < %s")


def _fill_postgresql(schema_editor, low: int, high: int) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(FILL_SQL, [low, high])
        cursor.execute(SUSPECT_SQL, [low, high])


def _fill_portable(apps, low: int, high: int) -> None:
    """The same with correlated subqueries (SQLite, the embedded installation: small tables)."""
    image_model, prediction_model = apps.get_model("inspections", "InspectionImage"), apps.get_model("inspections", "Prediction")
    latest = prediction_model.objects.filter(image=OuterRef("pk")).order_by("-created_at", "-id")

    def fact(field):
        return Subquery(latest.values(field)[:1])

    image_model.objects.filter(id__gte=low, id__lt=high).update(
        latest_prediction=fact("id"), latest_needs_review=fact("needs_review"), latest_margin=fact("margin"),
        latest_label=fact("label_id"), latest_model_version=fact("model_version_id"),
        latest_review_reasons=fact("review_reasons"),
        needs_attention=Case(When(suspect_suggestion__isnull=False, then=Value(True)), default=fact("needs_review"),
                             output_field=models.BooleanField()),
    )


def latest_prediction_fill(apps, schema_editor):
    """Fill every existing image, BATCH ids per transaction (the migration is not atomic)."""
    from django.db import transaction

    image_model = apps.get_model("inspections", "InspectionImage")
    bounds = image_model.objects.aggregate(low=models.Min("id"), high=models.Max("id"))
    if bounds["low"] is None:
        return
    postgresql = schema_editor.connection.vendor == "postgresql"
    for low in range(bounds["low"], bounds["high"] + 1, BATCH):
        with transaction.atomic(using=schema_editor.connection.alias):
            if postgresql:
                _fill_postgresql(schema_editor, low, low + BATCH)
            else:
                _fill_portable(apps, low, low + BATCH)


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """Built without locking out writes (CREATE INDEX CONCURRENTLY) on PostgreSQL. Elsewhere (the
    embedded SQLite) nothing is built: SQLite has no NULLS LAST in an index and its queue is small.
    (Migration 0020 has the same operation for the prediction table: migrations keep their own copy.)"""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # the fill commits per batch; CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("inspections", "0020_prediction_growth_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="inspectionimage",
            name="latest_label",
            field=models.ForeignKey(blank=True, db_index=False, editable=False, help_text="The latest prediction's class.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="inspections.defectclass"),
        ),
        migrations.AddField(
            model_name="inspectionimage",
            name="latest_margin",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="inspectionimage",
            name="latest_model_version",
            field=models.ForeignKey(blank=True, db_index=False, editable=False, help_text="The version that made the latest prediction.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="inspections.modelversion"),
        ),
        migrations.AddField(
            model_name="inspectionimage",
            name="latest_needs_review",
            field=models.BooleanField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="inspectionimage",
            name="latest_prediction",
            field=models.ForeignKey(blank=True, db_index=False, editable=False, help_text="The image's latest prediction (the one users see).", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="inspections.prediction"),
        ),
        migrations.AddField(
            model_name="inspectionimage",
            name="latest_review_reasons",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="inspectionimage",
            name="needs_attention",
            field=models.BooleanField(blank=True, editable=False, help_text="The queue's first key: the label is suspect, else the latest prediction's needs_review (null: neither a suspect label nor a prediction).", null=True),
        ),
        migrations.RunPython(latest_prediction_fill, migrations.RunPython.noop, elidable=True),
        AddIndexConcurrentlyOnPostgres(
            model_name="inspectionimage",
            index=models.Index(condition=models.Q(("label_source", "review")), fields=["id"], name="image_reviewed"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="inspectionimage",
            index=models.Index(condition=models.Q(("latest_prediction__isnull", False)), fields=["latest_prediction"], name="image_latest_prediction"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="inspectionimage",
            index=models.Index(models.OrderBy(models.F("needs_attention"), descending=True, nulls_last=True), models.OrderBy(models.F("latest_margin"), nulls_last=True), models.OrderBy(models.Case(models.When(label__isnull=True, then=models.Value(0)), default=models.Value(1), output_field=models.IntegerField())), models.OrderBy(models.F("created_at")), models.OrderBy(models.F("id")), condition=models.Q(("excluded", False), models.Q(models.Q(("label_source", "review"), _negated=True), ("suspect_suggestion__isnull", False), _connector="OR")), include=("label", "suspect_suggestion", "latest_prediction"), name="image_review_queue"),
        ),
    ]
