"""The periodic job clear-expired-sessions: its beat row, and the real worker deleting expired login
sessions (stored under their keys' hashes) while live ones keep working."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from inspections import task_names
from inspections.access.models import HashedSession
from inspections.access.services.sessions import sessions_clear_expired
from inspections.access.sessions import SessionStore, session_key_hash
from inspections.ops.services.schedules import periodic_tasks_ensure
from steelqc.celery import app
from tests.conftest import wait_for


def _session(*, expired: bool) -> str:
    store = SessionStore()
    store["who"] = "inspector"
    store.create()
    if expired:
        HashedSession.objects.filter(session_key=session_key_hash(store.session_key)).update(
            expire_date=timezone.now() - timedelta(hours=1))
    return store.session_key


@pytest.mark.django_db
def test_the_periodic_job_is_created_with_the_configured_interval(settings):
    settings.STEELQC_SESSION_SWEEP_INTERVAL_S = 3600
    periodic_tasks_ensure()
    job = PeriodicTask.objects.get(name="clear-expired-sessions")
    assert (job.task, job.queue, job.interval.every) == (task_names.CLEAR_EXPIRED_SESSIONS, "inference", 3600)


@pytest.mark.django_db
def test_only_expired_sessions_are_deleted():
    live, expired = _session(expired=False), _session(expired=True)
    assert HashedSession.objects.count() == 2
    assert sessions_clear_expired() == 1
    assert SessionStore(session_key=live).load() == {"who": "inspector"}
    assert SessionStore(session_key=expired).load() == {} and HashedSession.objects.count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_clears_expired_sessions(celery_worker):
    live, _ = _session(expired=False), _session(expired=True)
    app.send_task(task_names.CLEAR_EXPIRED_SESSIONS)
    wait_for(lambda: HashedSession.objects.count() == 1, timeout=60)
    assert SessionStore(session_key=live).exists(live)
