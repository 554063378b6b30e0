"""Print an API token for a user: ``python manage.py create_api_token USERNAME [--role integrator] [--create]``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from inspections.roles import ROLES


class Command(BaseCommand):
    help = "Print the API token of USERNAME (made on first use). Use it as `Authorization: Token KEY`."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", action="append", choices=ROLES, default=[],
                            help="Add the user to this role group (repeatable).")
        parser.add_argument("--create", action="store_true",
                            help="Create the user (without a password: API only) if it does not exist.")
        parser.add_argument("--rotate", action="store_true", help="Replace an existing token with a new one.")

    @transaction.atomic
    def handle(self, *args, username: str, role: list[str], create: bool, rotate: bool, **options):
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if user is None:
            if not create:
                raise CommandError(f"No user {username!r}; pass --create to make one.")
            user = User(**{User.USERNAME_FIELD: username})
            user.set_unusable_password()
            user.save()
            self.stderr.write(f"Created user {username!r} (no password: token only).")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; a token would not work.")
        for name in role:
            group = Group.objects.filter(name=name).first()
            if group is None:
                raise CommandError(f"Role group {name!r} does not exist; run `manage.py migrate` first.")
            user.groups.add(group)
        if rotate:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
