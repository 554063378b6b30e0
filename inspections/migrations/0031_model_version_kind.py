# A model version's kind: classifier (the default, every version so far) or anomaly; one active per kind.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0030_line_bridge'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='modelversion',
            name='one_active_model_version',
        ),
        migrations.AddField(
            model_name='modelversion',
            name='kind',
            field=models.CharField(choices=[('classifier', 'Classifier'), ('anomaly', 'Anomaly')], default='classifier', help_text='classifier (names a defect class) or anomaly (scores how unlike good steel an image is).', max_length=16),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'active')), fields=('kind',), name='one_active_model_version_per_kind'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['classifier', 'anomaly'])), name='model_version_kind_valid'),
        ),
    ]
