from django.db import migrations, models


class Migration(migrations.Migration):
    """Line counts in minutes, hours and days (the roll-up), and what of them was kept (so drift
    counts a kept image once, from its prediction row)."""

    dependencies = [
        ("inspections", "0018_retention_sweep"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="lineminute", name="line_minute_unique"),
        migrations.AddField(
            model_name="lineminute",
            name="resolution",
            field=models.CharField(choices=[("minute", "minute"), ("hour", "hour"), ("day", "day")],
                                   default="minute", max_length=6),
        ),
        migrations.AddField(
            model_name="lineminute",
            name="kept_per_class",
            field=models.JSONField(default=dict, help_text="Of the kept images: predicted class name -> count."),
        ),
        migrations.AddField(
            model_name="lineminute",
            name="kept_per_reason",
            field=models.JSONField(default=dict, help_text="Of the kept images: review reason -> count."),
        ),
        migrations.AlterField(
            model_name="lineminute",
            name="minute",
            field=models.DateTimeField(help_text="The bucket's start: the minute, hour or (local) day it counts."),
        ),
        migrations.AddConstraint(
            model_name="lineminute",
            constraint=models.UniqueConstraint(fields=("source", "resolution", "minute", "model_version"),
                                               name="line_minute_unique", nulls_distinct=False),
        ),
        migrations.AddConstraint(
            model_name="lineminute",
            constraint=models.CheckConstraint(condition=models.Q(resolution__in=["minute", "hour", "day"]),
                                              name="line_minute_resolution_valid"),
        ),
    ]
