# Per-class box thresholds of a model version (the model's boxes scoring below them are hidden in the
# review view and cannot be accepted), audited in the same history as the decision thresholds
# (kind decision or box).

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0033_prediction_anomaly_score'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='decisionthresholdchange',
            name='kind',
            field=models.CharField(choices=[('decision', 'Decision'), ('box', 'Box')], default='decision', max_length=16),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='box_thresholds',
            field=models.JSONField(blank=True, default=dict, help_text="Class name -> box score threshold set by an ML admin (the model's boxes of that class scoring below it are hidden in the review view and cannot be accepted); classes not named use the detection's default."),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='box_thresholds_revision',
            field=models.PositiveIntegerField(default=0, help_text='Bumped on every change of box_thresholds; clients send it back in If-Match.'),
        ),
        migrations.AddConstraint(
            model_name='decisionthresholdchange',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['decision', 'box'])), name='threshold_change_kind_valid'),
        ),
    ]
