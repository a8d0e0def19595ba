"""One rate budget per platform credential, shared by every worker.

A token bucket kept in Redis (one hash per credential, updated by a Lua
script so concurrent workers on any host draw from the same bucket), plus a
"blocked until" time set when the platform answers 429 / THROTTLED, so one
worker's throttling stops all of them. Without Redis (the embedded default)
the bucket lives in this process, which is then the only sender."""
from __future__ import annotations

import hashlib
import threading
import time
from typing import Protocol

from django.conf import settings

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


_local: dict[str, LocalBudget] = {}


def budget_key(platform: str, credential: str) -> str:
    # The credential holds a secret: only its hash names the bucket.
    return "posinv:budget:" + platform + ":" + hashlib.sha256(credential.encode()).hexdigest()[:24]


def budget_for(platform: str, credential: str, rate) -> Budget:
    """The shared budget of this credential (Redis when configured)."""
    key = budget_key(platform, credential)
    if settings.REDIS_URL and not settings.POSINV_JOBS_INLINE:
        from posinv.queueing import redis_connection

        return RedisBudget(connection=redis_connection(), key=key, capacity=rate.capacity, per_second=rate.per_second)
    if key not in _local:
        _local[key] = LocalBudget(capacity=rate.capacity, per_second=rate.per_second)
    return _local[key]


def budgets_reset() -> None:
    """Forget in-process buckets (tests)."""
    _local.clear()
