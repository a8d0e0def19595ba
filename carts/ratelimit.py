"""One rate budget per platform credential, shared by every worker.

Two kinds, as the platform counts. A platform that counts requests over any
rolling window (BaseLinker: 100 requests in any 60 s per token) gets a
sliding window: a call may go only while fewer than `limit` calls were taken
in the last `window` seconds (a bucket that starts full would let ~200 through
in the first minute). It lives in Redis (a sorted set, Lua) or, without Redis,
in the database (one locked row per credential), so the web server, the
scheduler and every worker draw from the same window either way.

The others get a token bucket kept in Redis (one hash per credential, updated by a Lua
script so concurrent workers on any host draw from the same bucket), plus a
"blocked until" time set when the platform answers 429 / THROTTLED, so one
worker's throttling stops all of them. Without Redis (the embedded default)
the bucket lives in this process, which is then the only sender."""
from __future__ import annotations

import hashlib
import threading
import time
import uuid
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction

_LUA = """
local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'stamp', 'blocked')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
local blocked = tonumber(state[3]) or 0
if blocked > now then return tostring(blocked - now) end
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', key, 3600)
return tostring(wait)
"""


class Budget(Protocol):
    """`take(cost)` returns 0 when the call may go now, else the seconds to wait
    (nothing is taken then); `block(seconds)` stops every taker for that long."""

    def take(self, cost: float = 1) -> float: ...

    def block(self, seconds: float) -> None: ...


class RedisBudget(Budget):
    def __init__(self, *, connection, key: str, capacity: float, per_second: float):
        self.connection = connection
        self.key = key
        self.capacity = capacity
        self.per_second = per_second
        self._script = connection.register_script(_LUA)

    def take(self, cost: float = 1) -> float:
        # Redis's clock would be better, but TIME is not allowed before writes
        # in old script modes; host clocks of one site agree well enough.
        return float(self._script(keys=[self.key], args=[self.capacity, self.per_second, cost, time.time()]))

    def block(self, seconds: float) -> None:
        until = time.time() + seconds
        current = self.connection.hget(self.key, "blocked")
        if current is None or float(current) < until:
            self.connection.hset(self.key, "blocked", str(until))
            self.connection.expire(self.key, 3600)


class LocalBudget(Budget):
    _lock = threading.Lock()

    def __init__(self, *, capacity: float, per_second: float):
        self.capacity = capacity
        self.per_second = per_second
        self.tokens = capacity
        self.stamp = time.monotonic()
        self.blocked_until = 0.0

    def take(self, cost: float = 1) -> float:
        with self._lock:
            now = time.monotonic()
            if self.blocked_until > now:
                return self.blocked_until - now
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
            self.stamp = now
            if self.tokens >= cost:
                self.tokens -= cost
                return 0.0
            return (cost - self.tokens) / self.per_second

    def block(self, seconds: float) -> None:
        with self._lock:
            self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


# Taken calls are counted this much longer than the platform's window: our
# stamp is taken before the request leaves, the platform's when it arrives,
# and hosts' clocks differ a little; without the margin two calls a window
# apart could land inside one window of the platform's.
WINDOW_MARGIN = 0.02

_WINDOW_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local member = ARGV[5]
local blocked = tonumber(redis.call('HGET', key .. ':state', 'blocked') or '0') or 0
if blocked > now then return tostring(blocked - now) end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local taken = redis.call('ZCARD', key)
if taken + cost <= limit then
  for i = 1, cost do redis.call('ZADD', key, now, member .. ':' .. i) end
  redis.call('EXPIRE', key, math.ceil(window) + 60)
  return '0'
end
local freeing = redis.call('ZRANGE', key, taken + cost - limit - 1, taken + cost - limit - 1, 'WITHSCORES')
return tostring(math.max(tonumber(freeing[2]) + window - now, 0.001))
"""


def _window_wait(stamps: list[float], *, limit: int, window: float, cost: int, now: float) -> float:
    """Seconds until `cost` more calls fit among `stamps` (sorted, all inside the window)."""
    if len(stamps) + cost <= limit:
        return 0.0
    return max(stamps[len(stamps) + cost - limit - 1] + window - now, 0.001)


class RedisWindowBudget(Budget):
    """Sliding window in Redis: a sorted set of the calls taken (score = time)."""

    def __init__(self, *, connection, key: str, limit: int, window: float):
        self.connection = connection
        self.key = key
        self.limit = int(limit)
        self.window = window * (1 + WINDOW_MARGIN)
        self._script = connection.register_script(_WINDOW_LUA)

    def take(self, cost: float = 1) -> float:
        return float(self._script(keys=[self.key], args=[self.limit, self.window, int(cost), time.time(),
                                                         uuid.uuid4().hex]))

    def block(self, seconds: float) -> None:
        until = time.time() + seconds
        state = self.key + ":state"
        current = self.connection.hget(state, "blocked")
        if current is None or float(current) < until:
            self.connection.hset(state, "blocked", str(until))
            self.connection.expire(state, int(seconds) + 60)


class DatabaseWindowBudget(Budget):
    """Sliding window in the database, for installations without Redis: one
    `RateWindow` row per credential holding the times of the calls taken,
    changed under a row lock, so every process (web server, scheduler, jobs)
    shares it. The first statement is an UPDATE, which takes the row lock on
    PostgreSQL and the write lock on SQLite before anything is read."""

    def __init__(self, *, key: str, limit: int, window: float):
        self.key = key
        self.limit = int(limit)
        self.window = window * (1 + WINDOW_MARGIN)

    def _locked_row(self):
        from carts.models import RateWindow

        if not RateWindow.objects.filter(key=self.key).update(key=self.key):
            try:
                with transaction.atomic():
                    RateWindow.objects.create(key=self.key)
            except IntegrityError:
                pass  # another process created it meanwhile
            RateWindow.objects.filter(key=self.key).update(key=self.key)
        return RateWindow.objects.select_for_update().get(key=self.key)

    def take(self, cost: float = 1) -> float:
        with transaction.atomic():
            row = self._locked_row()
            now = time.time()
            if row.blocked_until > now:
                return row.blocked_until - now
            stamps = sorted(s for s in row.stamps if s > now - self.window)
            wait = _window_wait(stamps, limit=self.limit, window=self.window, cost=int(cost), now=now)
            if wait == 0:
                stamps.extend([now] * int(cost))
            row.stamps = stamps
            row.save(update_fields=["stamps"])
            return wait

    def block(self, seconds: float) -> None:
        with transaction.atomic():
            row = self._locked_row()
            until = time.time() + seconds
            if row.blocked_until < until:
                row.blocked_until = until
                row.save(update_fields=["blocked_until"])


_local: dict[str, LocalBudget] = {}


def budget_key(platform: str, credential: str) -> str:
    # The credential holds a secret: only its hash names the bucket.
    return "posinv:budget:" + platform + ":" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def budget_for(platform: str, credential: str, rate) -> Budget:
    """The shared budget of this credential (Redis when configured; a sliding
    window in the database without Redis for platforms that count a window)."""
    key = budget_key(platform, credential)
    window = getattr(rate, "window_seconds", 0) * settings.POSINV_RATE_WINDOW_SCALE
    if window:
        if settings.REDIS_URL and not settings.POSINV_JOBS_INLINE:
            from posinv.queueing import redis_connection

            return RedisWindowBudget(connection=redis_connection(), key=key + ":window", limit=int(rate.capacity),
                                     window=window)
        return DatabaseWindowBudget(key=key, limit=int(rate.capacity), window=window)
    if settings.REDIS_URL and not settings.POSINV_JOBS_INLINE:
        from posinv.queueing import redis_connection

        return RedisBudget(connection=redis_connection(), key=key, capacity=rate.capacity, per_second=rate.per_second)
    if key not in _local:
        _local[key] = LocalBudget(capacity=rate.capacity, per_second=rate.per_second)
    return _local[key]


def budgets_reset() -> None:
    """Forget in-process buckets (tests)."""
    _local.clear()
