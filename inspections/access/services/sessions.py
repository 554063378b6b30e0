"""Expired login sessions: deleted by the periodic job ``clear-expired-sessions``."""

from __future__ import annotations

import logging

from django.utils import timezone

from inspections.access.models import HashedSession

logger = logging.getLogger(__name__)


def sessions_clear_expired() -> int:
    """Delete the sessions past their expiry date (what ``manage.py clearsessions`` does); returns how many."""
    deleted, _ = HashedSession.objects.filter(expire_date__lt=timezone.now()).delete()
    if deleted:
        logger.info("sessions: deleted %d expired", deleted)
    return deleted
