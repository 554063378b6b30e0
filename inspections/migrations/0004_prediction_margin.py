"""Prediction.margin: top-1 minus top-2 class probability, so the review queue can sort the
most uncertain predictions first in the database. Existing rows are filled from their stored
probabilities."""

from django.db import migrations, models


def _margin(probabilities) -> float:
    values = sorted((float(p) for p in (probabilities or {}).values()), reverse=True)
    if not values:
        return 0.0
    return values[0] - (values[1] if len(values) > 1 else 0.0)


def fill_margins(apps, schema_editor):
    Prediction = apps.get_model("inspections", "Prediction")
    batch = []
    for prediction in Prediction.objects.filter(margin__isnull=True).only("id", "probabilities").iterator(chunk_size=2000):
        prediction.margin = _margin(prediction.probabilities)
        batch.append(prediction)
        if len(batch) >= 2000:
            Prediction.objects.bulk_update(batch, ["margin"])
            batch = []
    if batch:
        Prediction.objects.bulk_update(batch, ["margin"])


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0003_training_run_heartbeat_and_single_run"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="margin",
            field=models.FloatField(
                blank=True, db_index=True, null=True,
                help_text="Top class probability minus the runner-up's: small means the model hesitated.",
            ),
        ),
        migrations.RunPython(fill_margins, migrations.RunPython.noop),
    ]
