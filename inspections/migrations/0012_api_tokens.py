"""Hashed, scoped, expiring API tokens (``ApiToken``), and the existing plain-text DRF tokens
moved into them: each key is kept only as its SHA-256 (scope ``admin``, name ``migrated``, so
every integration goes on working unchanged) and the plain-text row is deleted, so a database
dump no longer holds working keys. Going back cannot restore the plain keys: the reverse
leaves ``authtoken`` empty (make new tokens with ``create_api_token``)."""

import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PREFIX_LENGTH = 12  # inspections.services.api_tokens.PREFIX_LENGTH at the time of writing


def migrate_plain_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("inspections", "ApiToken")
    AuthEvent = apps.get_model("inspections", "AuthEvent")
    for old in Token.objects.select_related("user").order_by("created"):
        token = ApiToken.objects.create(
            user_id=old.user_id, name="migrated", prefix=old.key[:PREFIX_LENGTH],
            digest=hashlib.sha256(old.key.encode("utf-8")).hexdigest(), scope="admin",
        )
        ApiToken.objects.filter(pk=token.pk).update(created_at=old.created)
        AuthEvent.objects.create(kind="token_created", user_id=old.user_id, username=old.user.username,
                                 detail=f"token 'migrated' ({token.prefix}…, scope admin): a plain-text key, now hashed")
    Token.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('inspections', '0011_defect_class_plural'),
        ('authtoken', '0003_tokenproxy'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('prefix', models.CharField(db_index=True, max_length=16)),
                ('digest', models.CharField(max_length=64, unique=True)),
                ('scope', models.CharField(choices=[('read', 'read only'), ('upload', 'read and upload'), ('review', 'read and review'), ('admin', 'everything the role allows')], max_length=8)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('last_used_ip', models.GenericIPAddressField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('revoked_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('scope__in', ['read', 'upload', 'review', 'admin'])), name='api_token_scope_valid')],
            },
        ),
        migrations.RemoveConstraint(
            model_name='authevent',
            name='auth_event_kind_valid',
        ),
        migrations.AlterField(
            model_name='authevent',
            name='kind',
            field=models.CharField(choices=[('login', 'logged in'), ('login_failed', 'login failed'), ('lockout', 'locked out'), ('unlock', 'unlocked'), ('logout', 'logged out'), ('token_created', 'API token created'), ('token_revoked', 'API token revoked'), ('role_added', 'role added'), ('role_removed', 'role removed'), ('token_new_ip', 'API token used from a new address')], db_index=True, max_length=16),
        ),
        migrations.AddConstraint(
            model_name='authevent',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['login', 'login_failed', 'lockout', 'unlock', 'logout', 'token_created', 'token_revoked', 'role_added', 'role_removed', 'token_new_ip'])), name='auth_event_kind_valid'),
        ),
        migrations.RunPython(migrate_plain_tokens, migrations.RunPython.noop),
    ]
