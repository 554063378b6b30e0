from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0009_auth_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="embedding",
            field=models.BinaryField(
                blank=True, editable=False, null=True,
                help_text="The image's descriptor from this model (float16, little-endian): what look-alike search compares.",
            ),
        ),
    ]
