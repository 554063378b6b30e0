"""Which line images are kept: the retention policy per source and the keep decision.

A ``classify/`` image is decided after its prediction:

* any review reason (low confidence, out of distribution, foreign, ...) -> kept, always;
* otherwise it is *sampled* when ``hash(sha256) < sample_rate`` -- deterministic: the same bytes
  get the same answer on every worker and in every re-run, and over many different images the
  share kept is ``sample_rate`` -- and a sampled image is kept while the source is under both
  caps (``max_per_minute``, ``max_per_day``);
* everything else is not kept: no file, no row, only the per-minute counts.

The caps are counted atomically in Redis (one Lua script checks both counters and increments
both only when both are under their cap; the counters expire after their minute / day), so any
number of workers share them. Without Redis (the embedded installation) they are counted in the
Django cache, which is exact within one process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from inspections.catalog.limits import SOURCE_MAX_LENGTH
from inspections.errors import ApplicationError
from inspections.line.models import RetentionPolicy

logger = logging.getLogger(__name__)

KEY_PREFIX = "steelqc:retention:"
MINUTE_TTL_S = 120
DAY_TTL_S = 2 * 24 * 3600

KEPT_FLAGGED = "flagged"
KEPT_SAMPLED = "sampled"
NOT_SAMPLED = "not_sampled"
OVER_CAP = "over_cap"

# KEYS: minute counter, day counter; ARGV: minute cap, day cap, minute ttl, day ttl.
_TAKE_SLOT = """
local minute = tonumber(redis.call('GET', KEYS[1]) or '0')
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
if minute >= tonumber(ARGV[1]) or day >= tonumber(ARGV[2]) then return 0 end
redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('INCR', KEYS[2]) redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Policy:
    source: str  # the source the policy row names ("" for the default)
    sample_rate: float
    max_per_minute: int
    max_per_day: int


def settings_default_policy() -> Policy:
    return Policy(source="", sample_rate=settings.STEELQC_RETENTION_SAMPLE_RATE,
                  max_per_minute=settings.STEELQC_RETENTION_MAX_PER_MINUTE,
                  max_per_day=settings.STEELQC_RETENTION_MAX_PER_DAY)


def retention_policy_for(*, source: str) -> Policy:
    """The source's own policy, else the default row (blank source), else the settings default."""
    rows = {row.source: row for row in RetentionPolicy.objects.filter(source__in={source, ""})}
    row = rows.get(source) or rows.get("")
    if row is None:
        return settings_default_policy()
    return Policy(source=row.source, sample_rate=row.sample_rate, max_per_minute=row.max_per_minute,
                  max_per_day=row.max_per_day)


def retention_policy_set(*, source: str, sample_rate, max_per_minute, max_per_day, actor) -> RetentionPolicy:
    """Create or change the policy of ``source`` (blank: the default); refuses values out of range."""
    source = (source or "").strip()
    if len(source) > SOURCE_MAX_LENGTH:
        raise ApplicationError(f"source is limited to {SOURCE_MAX_LENGTH} characters.", code="field_too_long")
    try:
        rate, per_minute, per_day = float(sample_rate), int(max_per_minute), int(max_per_day)
    except (TypeError, ValueError):
        raise ApplicationError("sample_rate must be a number, the caps whole numbers.", code="invalid_policy") from None
    if not 0 <= rate <= 1:
        raise ApplicationError("sample_rate must be a share between 0 and 1 (0.01 keeps one in a hundred).",
                               code="invalid_policy")
    if per_minute < 0 or per_day < 0:
        raise ApplicationError("The caps cannot be negative.", code="invalid_policy")
    policy, _ = RetentionPolicy.objects.update_or_create(
        source=source,
        defaults={"sample_rate": rate, "max_per_minute": per_minute, "max_per_day": per_day,
                  "updated_by": actor if getattr(actor, "is_authenticated", False) else None},
    )
    logger.info("retention policy for %r set to rate %s, %s/min, %s/day", source, rate, per_minute, per_day)
    return policy


def retention_policy_delete(*, source: str) -> bool:
    """Remove a source's own policy (it falls back to the default); the default row may go too."""
    deleted, _ = RetentionPolicy.objects.filter(source=source).delete()
    return bool(deleted)


def sampled(*, sha256: str, rate: float) -> bool:
    """Deterministic sampling: the first 64 bits of the content hash as a share of 2**64."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    return int(sha256[:16], 16) / 2**64 < rate


def _cap_keys(source: str, now: datetime) -> tuple[str, str]:
    from django.db import connection

    # Named after the database too: test databases and installations may share one Redis.
    base = f"{KEY_PREFIX}{connection.settings_dict['NAME']}:{source}:"
    return base + now.strftime("m:%Y%m%d%H%M"), base + now.strftime("d:%Y%m%d")


def _take_slots(*, source: str, policy: Policy, count: int, now: datetime) -> list[bool]:
    """For ``count`` sampled images in order, whether each got a place under both caps."""
    if count == 0:
        return []
    minute_key, day_key = _cap_keys(source, now)
    from inspections.review.prediction_events import events_client

    client = events_client()
    if client is not None:
        try:
            script = client.register_script(_TAKE_SLOT)
            pipe = client.pipeline(transaction=False)
            for _ in range(count):
                script(keys=[minute_key, day_key],
                       args=[policy.max_per_minute, policy.max_per_day, MINUTE_TTL_S, DAY_TTL_S], client=pipe)
            return [bool(answer) for answer in pipe.execute()]
        except Exception:
            # Keep nothing sampled rather than exceed a cap nobody can count; flagged images are
            # kept regardless.
            logger.warning("retention caps cannot be counted in Redis; sampled images are not kept", exc_info=True)
            return [False] * count
    taken = []
    for _ in range(count):
        cache.add(minute_key, 0, MINUTE_TTL_S)
        cache.add(day_key, 0, DAY_TTL_S)
        ok = cache.get(minute_key, 0) < policy.max_per_minute and cache.get(day_key, 0) < policy.max_per_day
        if ok:
            cache.incr(minute_key)
            cache.incr(day_key)
        taken.append(ok)
    return taken


def retention_decide(*, source: str, items: list[tuple[str, list[str]]], policy: Policy | None = None,
                     now: datetime | None = None) -> list[str]:
    """The decision for each (sha256, review reasons) of one source's batch, in order:
    ``flagged`` or ``sampled`` (kept), ``not_sampled`` or ``over_cap`` (not kept)."""
    policy = policy or retention_policy_for(source=source)
    now = now or timezone.now()
    decisions = [KEPT_FLAGGED if reasons else (None if sampled(sha256=sha256, rate=policy.sample_rate) else NOT_SAMPLED)
                 for sha256, reasons in items]
    slots = iter(_take_slots(source=source, policy=policy, count=decisions.count(None), now=now))
    return [decision or (KEPT_SAMPLED if next(slots) else OVER_CAP) for decision in decisions]


def is_kept(decision: str) -> bool:
    return decision in (KEPT_FLAGGED, KEPT_SAMPLED)


MAX_KEEP_DAYS = 36500


def retention_keep_days_set(*, source: str, keep_days, actor) -> RetentionPolicy:
    """Set how long ``source``'s unneeded images are kept (days; blank or None: forever). A
    source without a policy row gets one with the default sampling (see ``retention_policy_set``)."""
    source = (source or "").strip()
    if len(source) > SOURCE_MAX_LENGTH:
        raise ApplicationError(f"source is limited to {SOURCE_MAX_LENGTH} characters.", code="field_too_long")
    text = "" if keep_days is None else str(keep_days).strip()
    if text == "":
        days = None
    else:
        try:
            days = int(text)
        except ValueError:
            raise ApplicationError("keep_days must be a whole number of days (blank: keep forever).",
                                   code="invalid_policy") from None
        if not 1 <= days <= MAX_KEEP_DAYS:
            raise ApplicationError(f"keep_days must be between 1 and {MAX_KEEP_DAYS} days (blank: keep forever).",
                                   code="invalid_policy")
    default = settings_default_policy()
    policy, _ = RetentionPolicy.objects.update_or_create(
        source=source,
        defaults={"keep_days": days, "updated_by": actor if getattr(actor, "is_authenticated", False) else None},
        create_defaults={"keep_days": days, "sample_rate": default.sample_rate, "max_per_minute": default.max_per_minute,
                         "max_per_day": default.max_per_day,
                         "updated_by": actor if getattr(actor, "is_authenticated", False) else None},
    )
    logger.info("retention policy for %r keeps unneeded images %s", source,
                "forever" if days is None else f"{days} days")
    return policy
