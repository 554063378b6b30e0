# Indexes of the prediction table sized for a billion rows; the plans behind them: make bench-tables
# (docs/benchmarks.md, bench-tables section).

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

# Rows arrive in created_at order, so a BRIN index (a few hundred kB at 10 million rows) serves
# time windows where the B-tree it replaces took about 21 bytes a row. PostgreSQL only: SQLite
# (the local demo database) has no BRIN and needs none.
SQL = {
    "postgresql": (
        ["CREATE INDEX CONCURRENTLY IF NOT EXISTS prediction_created_at_brin ON inspections_prediction"
         " USING brin (created_at)"],
        ["DROP INDEX CONCURRENTLY IF EXISTS prediction_created_at_brin"],
    ),
}


def _run(schema_editor, index: int) -> None:
    for statement in SQL.get(schema_editor.connection.vendor, ([], []))[index]:
        schema_editor.execute(statement)


def brin_on(apps, schema_editor):
    _run(schema_editor, 0)


def brin_off(apps, schema_editor):
    _run(schema_editor, 1)


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """The prediction table is the largest: on PostgreSQL its indexes are built without locking out
    writes (CREATE INDEX CONCURRENTLY); the embedded SQLite installation builds them the plain way.
    (The same operation as migration 0018's: migrations keep their own copy.)"""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("inspections", "0019_line_rollup"),
    ]

    operations = [
        # The latest prediction of an image (every "latest" lookup: the queue, the lists, reviews).
        AddIndexConcurrentlyOnPostgres(
            model_name="prediction",
            index=models.Index(fields=["image", "-created_at", "-id"], name="prediction_image_latest"),
        ),
        # Look-alike search: a version's descriptors counted and appended from the index alone.
        AddIndexConcurrentlyOnPostgres(
            model_name="prediction",
            index=models.Index(condition=models.Q(("embedding__isnull", False)), fields=["model_version", "id"],
                               name="prediction_embedded_by_version"),
        ),
        migrations.RunPython(brin_on, brin_off),
        # Now redundant: prediction_image_latest leads with image, the B-tree on created_at gives way to BRIN.
        migrations.AlterField(
            model_name="prediction",
            name="image",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="predictions", to="inspections.inspectionimage"),
        ),
        migrations.AlterField(
            model_name="prediction",
            name="created_at",
            field=models.DateTimeField(auto_now_add=True),
        ),
    ]
