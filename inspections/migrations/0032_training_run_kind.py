# What a training run trains: a classifier (the default, every run so far) or an anomaly model.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0031_model_version_kind'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingrun',
            name='kind',
            field=models.CharField(choices=[('classifier', 'Classifier'), ('anomaly', 'Anomaly')], default='classifier', help_text='What it trains: a classifier from the labelled images, or an anomaly model from the no_defect ones.', max_length=16),
        ),
        migrations.AddConstraint(
            model_name='trainingrun',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['classifier', 'anomaly'])), name='training_run_kind_valid'),
        ),
    ]
