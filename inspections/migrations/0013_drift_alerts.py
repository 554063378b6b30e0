"""Drift alerts: one row per episode of a source sending images unlike training, at most one
open per source."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0012_api_tokens"),
    ]

    operations = [
        migrations.CreateModel(
            name="DriftAlert",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(blank=True, help_text="The images' source ('' for none given).",
                                            max_length=100)),
                ("opened_at", models.DateTimeField(db_index=True)),
                ("closed_at", models.DateTimeField(blank=True, null=True)),
                ("window_hours", models.PositiveIntegerField()),
                ("threshold", models.FloatField()),
                ("foreign_share", models.FloatField(help_text="Share flagged foreign over the window when it opened.")),
                ("image_count", models.PositiveIntegerField(help_text="Images over the window when it opened.")),
                ("baseline_foreign_share", models.FloatField(blank=True, null=True)),
                ("closed_foreign_share", models.FloatField(blank=True, help_text="The share when it closed.",
                                                           null=True)),
                ("closed_image_count", models.PositiveIntegerField(blank=True, null=True)),
                ("model_version", models.ForeignKey(
                    blank=True, help_text="The active version whose predictions were measured.", null=True,
                    on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="inspections.modelversion")),
            ],
            options={
                "ordering": ["-opened_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(condition=models.Q(("closed_at__isnull", True)), fields=("source",),
                                            name="one_open_drift_alert_per_source"),
                    models.CheckConstraint(condition=models.Q(("foreign_share__gte", 0), ("foreign_share__lte", 1)),
                                           name="drift_alert_share_0_1"),
                ],
            },
        ),
    ]
