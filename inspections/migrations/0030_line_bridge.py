# The line bridge's records: the frames it took (so a restart never classifies one twice) and its MQTT outbox.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0029_review_undo'),
    ]

    operations = [
        migrations.CreateModel(
            name='BridgeFrame',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.CharField(max_length=100)),
                ('sha256', models.CharField(max_length=64)),
                ('name', models.CharField(help_text="The file's name in its folder (or the frame's, from MQTT).", max_length=255)),
                ('origin', models.CharField(choices=[('folder', 'a file in a watched folder'), ('mqtt', 'an MQTT message')], default='folder', max_length=6)),
                ('state', models.CharField(choices=[('taken', 'taken: sent to be classified'), ('done', 'done: classified'), ('failed', 'failed: refused, with its reason')], default='taken', max_length=6)),
                ('batch', models.CharField(help_text="The classify request it went in: its idempotency key's stem.", max_length=64)),
                ('position', models.PositiveSmallIntegerField(default=0, help_text='Its place in that request.')),
                ('result', models.JSONField(blank=True, help_text='What was published as its result.', null=True)),
                ('reason', models.CharField(blank=True, help_text='Why it failed.', max_length=500)),
                ('taken_at', models.DateTimeField(auto_now_add=True)),
                ('finished_at', models.DateTimeField(blank=True, db_index=True, null=True)),
            ],
            options={
                'ordering': ['id'],
                'indexes': [models.Index(condition=models.Q(('state', 'taken')), fields=['source', 'batch'], name='bridge_frame_taken')],
                'constraints': [models.UniqueConstraint(fields=('source', 'sha256'), name='bridge_frame_once_per_source'), models.CheckConstraint(condition=models.Q(('state__in', ['taken', 'done', 'failed'])), name='bridge_frame_state_valid'), models.CheckConstraint(condition=models.Q(('origin__in', ['folder', 'mqtt'])), name='bridge_frame_origin_valid')],
            },
        ),
        migrations.CreateModel(
            name='BridgeMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=200, unique=True)),
                ('topic', models.CharField(max_length=200)),
                ('payload', models.JSONField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('published_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['id'],
                'indexes': [models.Index(condition=models.Q(('published_at__isnull', True)), fields=['id'], name='bridge_message_outbox'), models.Index(fields=['published_at'], name='bridge_message_published')],
            },
        ),
    ]
