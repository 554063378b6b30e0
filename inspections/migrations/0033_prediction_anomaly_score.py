# Anomaly scores beside the classifier: each prediction's anomaly_score and the anomaly version that
# scored it; an anomaly model's answer alone (no classifier active) has no class. The image keeps
# its latest prediction's score for the queue's order (a partial index: empty until scores arrive).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0032_training_run_kind'),
    ]

    operations = [
        migrations.AddField(
            model_name='inspectionimage',
            name='latest_anomaly_score',
            field=models.FloatField(blank=True, editable=False, help_text="The latest prediction's anomaly score (null: none was scored): what the queue may order by.", null=True),
        ),
        migrations.AddField(
            model_name='prediction',
            name='anomaly_score',
            field=models.FloatField(blank=True, help_text="How unlike good steel the image is: the anomaly model's image score over its threshold (above 1: reason anomaly); empty when no anomaly model was active.", null=True),
        ),
        migrations.AddField(
            model_name='prediction',
            name='anomaly_version',
            field=models.ForeignKey(blank=True, db_index=False, help_text='The anomaly model that scored the image; empty when none was active.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inspections.modelversion'),
        ),
        migrations.AlterField(
            model_name='prediction',
            name='confidence',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='prediction',
            name='label',
            field=models.ForeignKey(blank=True, help_text="The predicted class; empty for an anomaly model's answer alone (no classifier was active).", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='inspections.defectclass'),
        ),
        migrations.AlterField(
            model_name='prediction',
            name='model_version',
            field=models.ForeignKey(help_text="The classifier that answered; an anomaly model's answer alone names the anomaly version.", on_delete=django.db.models.deletion.PROTECT, related_name='predictions', to='inspections.modelversion'),
        ),
        migrations.AlterField(
            model_name='prediction',
            name='ood_score',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='inspectionimage',
            index=models.Index(models.OrderBy(models.F('latest_anomaly_score'), descending=True), models.F('id'), condition=models.Q(('latest_anomaly_score__isnull', False)), name='image_anomaly_score'),
        ),
        migrations.AddConstraint(
            model_name='prediction',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('confidence__isnull', False), ('label__isnull', False), ('ood_score__isnull', False)), models.Q(('anomaly_score__isnull', False), ('confidence__isnull', True), ('label__isnull', True)), _connector='OR'), name='prediction_class_or_anomaly_score'),
        ),
        migrations.AddConstraint(
            model_name='prediction',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('anomaly_score__isnull', True), ('anomaly_version__isnull', True)), models.Q(('anomaly_score__isnull', False), ('anomaly_version__isnull', False)), _connector='OR'), name='prediction_anomaly_score_names_its_version'),
        ),
    ]
