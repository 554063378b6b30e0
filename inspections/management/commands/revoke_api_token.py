"""Revoke API tokens: ``python manage.py revoke_api_token ID_OR_PREFIX ...`` or ``--user USERNAME``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from inspections.access.models import ApiToken
from inspections.access.services.api_tokens import PREFIX_LENGTH, api_token_revoke, api_token_revoke_all


class Command(BaseCommand):
    help = "Revoke tokens by id or prefix (as list_api_tokens shows them), or every token of --user."

    def add_arguments(self, parser):
        parser.add_argument("tokens", nargs="*", help="Token ids or prefixes.")
        parser.add_argument("--user", help="Revoke every live token of this user.")

    @transaction.atomic
    def handle(self, *args, tokens: list[str], user: str | None, **options):
        if not tokens and not user:
            raise CommandError("Name token ids or prefixes, or --user USERNAME.")
        revoked = 0
        for reference in tokens:
            reference = reference.rstrip("…")
            matches = list(ApiToken.objects.select_related("user").filter(
                **({"pk": int(reference)} if reference.isdigit() and len(reference) < PREFIX_LENGTH
                   else {"prefix": reference})))
            if len(matches) != 1:
                raise CommandError(f"{reference!r} names {len(matches)} tokens; give the id instead."
                                   if matches else f"No token {reference!r}.")
            revoked += api_token_revoke(token=matches[0])
        if user:
            User = get_user_model()
            owner = User.objects.filter(**{User.USERNAME_FIELD: user}).first()
            if owner is None:
                raise CommandError(f"No user {user!r}.")
            revoked += api_token_revoke_all(user=owner)
        self.stdout.write(f"Revoked {revoked} token(s).")
