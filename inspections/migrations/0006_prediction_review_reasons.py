"""Each prediction keeps why it needs a person. Predictions made before this field existed get
reasons derived from what they stored: only those flagged ``needs_review`` get any (``foreign``
when the OOD score was above 1, ``low_confidence`` when the confidence was under 0.6 or the
top-2 margin under 0.2 — the review rule's defaults); ``needs_review`` itself is kept as it was,
so a flagged prediction whose reason cannot be told has an empty list."""

from django.db import migrations, models

CONFIDENCE_THRESHOLD = 0.6  # mlcore.artefact.DEFAULT_CONFIDENCE_THRESHOLD when this was written
MARGIN_THRESHOLD = 0.2      # mlcore.artefact.DEFAULT_MARGIN_THRESHOLD


def derive_reasons(apps, schema_editor):
    Prediction = apps.get_model("inspections", "Prediction")
    changed = []
    for prediction in Prediction.objects.filter(needs_review=True).only("ood_score", "confidence", "margin").iterator():
        reasons = []
        if prediction.ood_score > 1.0:
            reasons.append("foreign")
        margin = prediction.margin if prediction.margin is not None else 1.0
        if prediction.confidence < CONFIDENCE_THRESHOLD or margin < MARGIN_THRESHOLD:
            reasons.append("low_confidence")
        if reasons:
            prediction.review_reasons = reasons
            changed.append(prediction)
    Prediction.objects.bulk_update(changed, ["review_reasons"], batch_size=2000)


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0005_actors_and_run_trigger_choices'),
    ]

    operations = [
        migrations.AddField(
            model_name='prediction',
            name='review_reasons',
            field=models.JSONField(blank=True, default=list, help_text='Codes of why it needs a person (mlcore.artefact.REVIEW_REASONS); empty: auto-accepted.'),
        ),
        migrations.RunPython(derive_reasons, migrations.RunPython.noop),
    ]
