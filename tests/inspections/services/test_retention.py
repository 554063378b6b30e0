"""The retention policy: flagged images always kept, a deterministic sampled share of the rest,
per-minute and per-day caps counted atomically in Redis, nothing kept beyond the policy."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connections

from inspections.errors import ApplicationError
from inspections.line.services.retention import (
    KEPT_FLAGGED,
    KEPT_SAMPLED,
    NOT_SAMPLED,
    OVER_CAP,
    Policy,
    retention_decide,
    retention_policy_for,
    retention_policy_set,
    sampled,
)
from inspections.models import RetentionPolicy
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 10, 30, 15, tzinfo=dt_timezone.utc)


def _hashes(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest() for i in range(n)]


def _source() -> str:
    return f"line-{uuid.uuid4().hex[:8]}"  # fresh cap counters per test


def test_flagged_images_are_always_kept_even_with_rate_zero_and_no_room():
    policy = Policy(source="", sample_rate=0.0, max_per_minute=0, max_per_day=0)
    items = [(h, ["low_confidence"]) for h in _hashes(50)]
    assert retention_decide(source=_source(), items=items, policy=policy, now=NOW) == [KEPT_FLAGGED] * 50


def test_sampling_is_deterministic_and_keeps_the_rate_share():
    hashes = _hashes(20000)
    kept = [h for h in hashes if sampled(sha256=h, rate=0.05)]
    assert 0.045 < len(kept) / len(hashes) < 0.055
    assert kept == [h for h in hashes if sampled(sha256=h, rate=0.05)]  # the same bytes, the same answer
    assert not any(sampled(sha256=h, rate=0.0) for h in hashes[:500])
    assert all(sampled(sha256=h, rate=1.0) for h in hashes[:500])


def test_unflagged_images_follow_the_rate_when_under_the_caps():
    policy = Policy(source="", sample_rate=0.1, max_per_minute=10**6, max_per_day=10**6)
    hashes = _hashes(3000, "rate")
    decisions = retention_decide(source=_source(), items=[(h, []) for h in hashes], policy=policy, now=NOW)
    assert set(decisions) == {KEPT_SAMPLED, NOT_SAMPLED}
    assert [d == KEPT_SAMPLED for d in decisions] == [sampled(sha256=h, rate=0.1) for h in hashes]
    assert 0.08 < decisions.count(KEPT_SAMPLED) / 3000 < 0.12


def test_the_per_minute_cap_holds_and_a_new_minute_opens_it_again():
    source, policy = _source(), Policy(source="", sample_rate=1.0, max_per_minute=7, max_per_day=1000)
    items = [(h, []) for h in _hashes(20, "minute")]
    first = retention_decide(source=source, items=items, policy=policy, now=NOW)
    assert first.count(KEPT_SAMPLED) == 7 and first.count(OVER_CAP) == 13
    assert first[:7] == [KEPT_SAMPLED] * 7
    # Flagged ones are kept past the cap and do not use it up.
    again = retention_decide(source=source, items=[(items[0][0], ["foreign"]), items[1]], policy=policy,
                             now=NOW + timedelta(seconds=30))
    assert again == [KEPT_FLAGGED, OVER_CAP]
    later = retention_decide(source=source, items=items, policy=policy, now=NOW + timedelta(minutes=1))
    assert later.count(KEPT_SAMPLED) == 7


def test_the_per_day_cap_holds_across_minutes():
    source, policy = _source(), Policy(source="", sample_rate=1.0, max_per_minute=5, max_per_day=12)
    kept = 0
    for minute in range(5):
        decisions = retention_decide(source=source, items=[(h, []) for h in _hashes(10, f"d{minute}")],
                                     policy=policy, now=NOW + timedelta(minutes=minute))
        kept += decisions.count(KEPT_SAMPLED)
    assert kept == 12
    next_day = retention_decide(source=source, items=[(h, []) for h in _hashes(3, "n")], policy=policy,
                                now=NOW + timedelta(days=1))
    assert next_day == [KEPT_SAMPLED] * 3


def test_caps_hold_under_concurrent_workers():
    source, policy = _source(), Policy(source="", sample_rate=1.0, max_per_minute=25, max_per_day=1000)
    results: list[list[str]] = []

    def worker(salt: str) -> None:
        try:
            results.append(retention_decide(source=source, items=[(h, []) for h in _hashes(20, salt)],
                                            policy=policy, now=NOW))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(r.count(KEPT_SAMPLED) for r in results) == 25
    assert sum(len(r) for r in results) == 120


def test_caps_are_per_source():
    policy = Policy(source="", sample_rate=1.0, max_per_minute=2, max_per_day=10)
    items = [(h, []) for h in _hashes(4, "s")]
    assert retention_decide(source=_source(), items=items, policy=policy, now=NOW).count(KEPT_SAMPLED) == 2
    assert retention_decide(source=_source(), items=items, policy=policy, now=NOW).count(KEPT_SAMPLED) == 2


def test_policy_lookup_falls_back_from_source_to_default_row_to_settings(settings):
    settings.STEELQC_RETENTION_SAMPLE_RATE = 0.02
    settings.STEELQC_RETENTION_MAX_PER_MINUTE = 3
    settings.STEELQC_RETENTION_MAX_PER_DAY = 30
    assert retention_policy_for(source="line-a") == Policy(source="", sample_rate=0.02, max_per_minute=3, max_per_day=30)
    admin = UserFactory(roles=["ml_admin"])
    retention_policy_set(source="", sample_rate=0.5, max_per_minute=9, max_per_day=90, actor=admin)
    assert retention_policy_for(source="line-a").sample_rate == 0.5
    retention_policy_set(source=" line-a ", sample_rate=0.25, max_per_minute=4, max_per_day=40, actor=admin)
    assert retention_policy_for(source="line-a") == Policy(source="line-a", sample_rate=0.25, max_per_minute=4,
                                                           max_per_day=40)
    assert retention_policy_for(source="line-b").sample_rate == 0.5
    row = RetentionPolicy.objects.get(source="line-a")
    assert row.updated_by == admin and row.keep_flagged is True


@pytest.mark.parametrize(("rate", "per_minute", "per_day"), [(1.5, 1, 1), (-0.1, 1, 1), ("x", 1, 1), (0.5, -1, 1),
                                                            (0.5, 1, -3), (float("nan"), 1, 1)])
def test_out_of_range_policies_are_refused_and_nothing_is_written(rate, per_minute, per_day):
    with pytest.raises(ApplicationError) as error:
        retention_policy_set(source="line-x", sample_rate=rate, max_per_minute=per_minute, max_per_day=per_day,
                             actor=None)
    assert error.value.code == "invalid_policy"
    assert not RetentionPolicy.objects.exists()
