from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0016_retention_and_line_stats"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="boxes",
            field=models.JSONField(
                blank=True, default=list,
                help_text="Defect boxes the model found, best first: [{label, box: [x0, y0, x1, y1] as fractions "
                          "of width and height, score}]; empty when the version has no detection head.",
            ),
        ),
    ]
