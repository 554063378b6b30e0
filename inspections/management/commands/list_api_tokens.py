"""List API tokens (never their secrets): ``python manage.py list_api_tokens [USERNAME] [--all]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from inspections.access import selectors as access_selectors


COLUMNS = ["id", "user", "name", "scope", "prefix", "created", "expires", "last used", "state"]


class Command(BaseCommand):
    help = "List API tokens, one per line under column headers: id, user, name, scope, prefix, created, expires, last used, state."

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="Only this user's tokens.")
        parser.add_argument("--all", action="store_true", help="Include revoked and expired tokens.")

    def handle(self, *args, username: str | None, all: bool, **options):
        tokens = access_selectors.api_token_list(username=username, include_dead=all)
        if not tokens:
            self.stderr.write("No tokens.")
            return
        rows = [COLUMNS] + [[
            str(token.pk), token.user.get_username(), token.name, token.scope, token.prefix + "…",
            f"{token.created_at:%Y-%m-%d %H:%M}",
            f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never",
            f"{token.last_used_at:%Y-%m-%d %H:%M} from {token.last_used_ip or '?'}" if token.last_used_at
            else "never",
            token.state,
        ] for token in tokens]
        widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
