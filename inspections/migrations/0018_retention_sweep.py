import inspections.models
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """The image table may be large: on PostgreSQL the index is built without locking out writes
    (CREATE INDEX CONCURRENTLY); the embedded SQLite installation builds it the plain way."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('inspections', '0017_prediction_boxes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingFileDeletion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text='The storage name of the file.', max_length=255, unique=True)),
                ('sha256', models.CharField(help_text="The deleted image's hash (a re-upload may reuse it).", max_length=64)),
                ('size_bytes', models.PositiveBigIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=500)),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='RetentionRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('started_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('dry_run', models.BooleanField(default=False)),
                ('trigger', models.CharField(choices=[('schedule', 'the periodic job'), ('command', 'the command line')], max_length=16)),
                ('source_filter', models.CharField(blank=True, help_text='The one source swept (--source); empty: every source.', max_length=100, null=True)),
                ('limit', models.PositiveIntegerField(blank=True, help_text='Most images this run could delete.', null=True)),
                ('images_deleted', models.PositiveIntegerField(default=0, help_text='Deleted, or would be in a dry run.')),
                ('bytes_freed', models.PositiveBigIntegerField(default=0, help_text="Their stored bytes (the rows' size_bytes).")),
                ('files_deleted', models.PositiveIntegerField(default=0, help_text="Stored files removed, earlier runs' retries too.")),
                ('files_failed', models.PositiveIntegerField(default=0, help_text='Files whose removal failed (a later run retries).')),
                ('more_left', models.BooleanField(default=False, help_text='Stopped at its limit or time with expired images left.')),
                ('per_source', models.JSONField(blank=True, default=dict, help_text='source -> {keep_days, cutoff, deleted, bytes, kept: {reason: count}}.')),
                ('error', models.TextField(blank=True)),
            ],
            options={
                'ordering': ['-started_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='retentionpolicy',
            name='keep_days',
            field=models.PositiveIntegerField(blank=True, default=inspections.models.retention_default_keep_days, help_text='Days an image nobody needs is kept (blank: forever); labelled, reviewed, boxed, snapshotted and queued images are never deleted.', null=True),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name='inspectionimage',
            index=models.Index(fields=['source', 'created_at'], name='image_source_created_at'),
        ),
        migrations.AddConstraint(
            model_name='retentionpolicy',
            constraint=models.CheckConstraint(condition=models.Q(('keep_days__isnull', True), ('keep_days__gte', 1), _connector='OR'), name='retention_policy_keep_days_positive'),
        ),
        migrations.AddConstraint(
            model_name='retentionrun',
            constraint=models.CheckConstraint(condition=models.Q(('trigger__in', ['schedule', 'command'])), name='retention_run_trigger_valid'),
        ),
    ]
