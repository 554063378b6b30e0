# Per-class decision thresholds of a model version and their audit trail.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0013_drift_alerts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='decision_thresholds',
            field=models.JSONField(blank=True, default=dict, help_text="Class name -> confidence threshold set by an ML admin (below it a prediction of that class goes to review); classes not named use the version's default."),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='thresholds_revision',
            field=models.PositiveIntegerField(default=0, help_text='Bumped on every change of decision_thresholds; clients send it back in If-Match.'),
        ),
        migrations.CreateModel(
            name='DecisionThresholdChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('class_name', models.CharField(max_length=100)),
                ('old_threshold', models.FloatField()),
                ('new_threshold', models.FloatField()),
                ('changed_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('note', models.CharField(blank=True, max_length=500)),
                ('revision', models.PositiveIntegerField(help_text="The version's thresholds_revision this change produced.")),
                ('changed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('model_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='threshold_changes', to='inspections.modelversion')),
            ],
            options={
                'ordering': ['-changed_at', '-id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('new_threshold__gte', 0), ('new_threshold__lte', 1)), name='threshold_change_new_0_1')],
            },
        ),
    ]
