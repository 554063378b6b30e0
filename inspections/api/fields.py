"""Small helpers the domains' API serializers share."""

from __future__ import annotations


def _username(user) -> str | None:
    return user.get_username() if user else None
