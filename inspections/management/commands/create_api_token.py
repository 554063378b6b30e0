"""Make an API token and print its secret once:
``python manage.py create_api_token USERNAME [--name N] [--scope S] [--expires-days D] [--role R] [--create] [--rotate]``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from inspections.access.models import ApiTokenScope
from inspections.access.roles import ROLES
from inspections.access.services.api_tokens import ApiTokenError, api_token_create, api_token_revoke_all


class Command(BaseCommand):
    help = ("Make a new API token for USERNAME and print its secret (shown this once; only a hash is stored). "
            "Use it as `Authorization: Token SECRET`.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What uses the token (default: 'command line').")
        parser.add_argument("--scope", choices=ApiTokenScope.values, default=ApiTokenScope.ADMIN,
                            help="read, upload, review or admin (default: admin = all the user's role allows).")
        parser.add_argument("--expires-days", type=int, default=None,
                            help="Expire after this many days (default: never).")
        parser.add_argument("--role", action="append", choices=ROLES, default=[],
                            help="Add the user to this role group (repeatable).")
        parser.add_argument("--create", action="store_true",
                            help="Create the user (without a password: API only) if it does not exist.")
        parser.add_argument("--rotate", action="store_true", help="Revoke the user's other tokens first.")

    @transaction.atomic
    def handle(self, *args, username: str, name: str, scope: str, expires_days: int | None, role: list[str],
               create: bool, rotate: bool, **options):
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be 1 or more.")
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            if not create:
                raise CommandError(f"No user {username!r}; pass --create to make one.")
            user = User(**{User.USERNAME_FIELD: username})
            user.set_unusable_password()
            user.save()
            self.stderr.write(f"Created user {username!r} (no password: token only).")
        for group_name in role:
            group = Group.objects.filter(name=group_name).first()
            if group is None:
                raise CommandError(f"Role group {group_name!r} does not exist; run `manage.py migrate` first.")
            user.groups.add(group)
        if rotate:
            revoked = api_token_revoke_all(user=user)
            self.stderr.write(f"Revoked {revoked} earlier token(s) of {username!r}.")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            issued = api_token_create(user=user, name=name, scope=scope, expires_at=expires_at)
        except ApiTokenError as error:
            raise CommandError(str(error)) from None
        self.stderr.write(f"Token {issued.token.name!r} ({issued.token.prefix}…, scope {scope}"
                          + (f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "")
                          + "). The secret below is shown this once:")
        self.stdout.write(issued.secret)
