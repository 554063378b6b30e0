"""API request rates: per user and scope (``read``, ``upload``, ``write``), and per client address
for requests that end unauthenticated (``anon``).

**Shared by every web process.** With Redis (``STEELQC_EVENTS_REDIS_URL``; production requires
it) each (scope, identity) is a sliding window kept in one sorted set: a member per counted
request, scored by the Redis server's clock, and a Lua script drops what left the window, counts
and adds in one atomic step, so gunicorn workers and hosts draw on one budget and no two of them
can take the last place. Keys carry the database's name, as the other Redis keys do, so
installations and parallel test databases sharing one Redis never meet. Without Redis (the
embedded ``make run``, one web process) the same window lives in Django's cache, which is this
process's memory: the rates then hold per process.

**Failing open.** When Redis fails mid-request the request goes through and a warning is logged;
for ``REDIS_BACKOFF_S`` after that this process does not ask Redis again (and throttles nothing)
rather than make every API request wait out the timeout. A throttle protects the server from a
runaway client; it must not take the API down with it.

The rates are read on each request (DRF's own throttles copy them at import), so they follow the
settings and tests can lower them.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from inspections.access.audit import client_address

logger = logging.getLogger(__name__)

KEY_PREFIX = "steelqc:throttle:"  # + database name + ":" + scope + ":" + identity
ANON_SCOPE = "anon"
REDIS_TIMEOUT_S = 0.5
REDIS_BACKOFF_S = 5.0
_PERIODS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# KEYS[1] the window; ARGV: the limit, the window in ms, a member naming this request, and "1" to
# count it when there is room ("0" only asks). Answers 0 when there is room, otherwise the ms until
# the oldest counted request leaves the window. Milliseconds, not microseconds: Lua hands numbers
# to Redis with 14 significant digits.
_WINDOW_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, window - (now - tonumber(oldest[2])))
"""

_scripts: dict[str, object] = {}
_redis_down_until: dict[str, float] = {}
_redis_lock = threading.Lock()
_local_lock = threading.Lock()


def parse_rate(rate: str) -> tuple[int, int]:
    """``"600/min"`` -> (600, 60): requests per window, window in seconds."""
    count, period = rate.split("/")
    return int(count), _PERIODS_S[period[0]]


def _redis_window_take():
    """(This process's window script bound to Redis, or None without Redis or while backing off;
    the Redis URL).

    One client per process and URL, its own rather than the events client: that one has no read
    timeout (its pub/sub reads block on purpose), and a Redis that hangs must not hang every API
    request."""
    url = settings.STEELQC_EVENTS_REDIS_URL
    if not url:
        return None, url
    with _redis_lock:
        if _redis_down_until.get(url, 0.0) > time.monotonic():
            return None, url
        script = _scripts.get(url)
        if script is None:
            import redis

            client = redis.Redis.from_url(
                url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S, health_check_interval=0)
            script = _scripts[url] = client.register_script(_WINDOW_TAKE)
        return script, url


def _key(scope: str, identity: str) -> str:
    from django.db import connection

    return f"{KEY_PREFIX}{connection.settings_dict['NAME']}:{scope}:{identity}"


def window_take(*, scope: str, identity: str, rate: str, count: bool = True) -> float | None:
    """None when (``scope``, ``identity``) has room under ``rate`` — counting this request when
    ``count`` — otherwise the seconds until a place frees."""
    limit, window_s = parse_rate(rate)
    key = _key(scope, identity)
    script, url = _redis_window_take()
    if script is not None:
        try:
            wait_ms = script(keys=[key], args=[limit, window_s * 1000, secrets.token_hex(8), int(count)])
        except Exception:
            with _redis_lock:
                _redis_down_until[url] = time.monotonic() + REDIS_BACKOFF_S
            logger.warning("API throttle: Redis failed; requests are not throttled for the next %s s",
                           REDIS_BACKOFF_S, exc_info=True)
            return None
        return wait_ms / 1000 if wait_ms else None
    if url:
        return None  # backing off after a Redis failure
    return _local_take(key=key, limit=limit, window_s=window_s, count=count)


def _local_take(*, key: str, limit: int, window_s: int, count: bool) -> float | None:
    """The same window in Django's cache: this process's memory, so per process."""
    with _local_lock:
        now = time.time()
        history = [moment for moment in cache.get(key, []) if moment > now - window_s]
        if len(history) >= limit:
            return window_s - (now - history[0])
        if count:
            history.append(now)
            cache.set(key, history, window_s)
        return None


def _identity(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return _address(request)


def _address(request) -> str:
    return f"address:{client_address(request) or 'unknown'}"


class ScopedThrottle(BaseThrottle):
    """Rate per user and scope (per address for a view that lets anonymous callers in); views
    pick the scope per method in ``throttle_scopes``."""

    def allow_request(self, request, view) -> bool:
        scopes = getattr(view, "throttle_scopes", {})
        scope = scopes.get(request.method) or ("read" if request.method in ("GET", "HEAD", "OPTIONS") else "write")
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
        self.wait_s = None if rate is None else window_take(scope=scope, identity=_identity(request), rate=rate)
        return self.wait_s is None

    def wait(self) -> float | None:
        return self.wait_s


def unauthenticated_throttle_check(request) -> None:
    """Raise ``Throttled`` when the caller's address is over its budget of unauthenticated
    requests (``anon``). Called before any credential is looked at, so a flood of bad tokens
    costs no token lookups once the budget is spent; valid credentials from that address wait too.

    It only asks; ``unauthenticated_request_count`` counts after authentication failed. Requests
    racing past the check at the same moment may therefore go a few over the budget, once."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(ANON_SCOPE)
    if rate is None:
        return
    wait_s = window_take(scope=ANON_SCOPE, identity=_address(request), rate=rate, count=False)
    if wait_s is not None:
        raise Throttled(wait=wait_s)


def unauthenticated_request_count(request) -> None:
    """Count a request that ended unauthenticated (no credentials, or refused ones) against its
    address's ``anon`` budget."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(ANON_SCOPE)
    if rate is not None:
        window_take(scope=ANON_SCOPE, identity=_address(request), rate=rate)

