"""Short-lived counters and marks shared by every web process, for the
failed-credential throttles (API tokens: posinv/api/throttling.py; password
logins: posinv/services/login_throttle.py).

They live in Redis when REDIS_URL is set, so every web process and host sees
the same figures. A Redis outage must stop neither tills nor staff, so on a
Redis error they fall back to this process for a few seconds (and are then
per process, so a limit is per web process until Redis is back); what was
counted in-process is not carried over to Redis. Keys expire by themselves,
in Redis and here.

Callers name their keys (a prefix of their own, the subject, and usually a
time-window number, see `window_number`) so that a clock passed in by a test
moves windows the same way in Redis and in-process."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from django.conf import settings

logger = logging.getLogger(__name__)

# After a Redis error, values stay in-process this long before Redis is tried again:
# a down Redis must not add a connect timeout to every request.
REDIS_RETRY_SECONDS = 5.0
# The in-process table drops expired keys at most this often (not on every write,
# which would be quadratic while someone cycles through many usernames).
LOCAL_PRUNE_SECONDS = 5.0


class _LocalValues:
    """Keys with a value and an expiry (monotonic clock) in this process: the fallback."""

    def __init__(self):
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float]] = {}
        self._next_prune = 0.0

    def _live(self, key: str, now: float) -> str | None:
        entry = self._values.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        for key in [k for k, (_, expires) in self._values.items() if expires <= now]:
            del self._values[key]
        self._next_prune = now + LOCAL_PRUNE_SECONDS

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        now = time.monotonic()
        with self._lock:
            return [self._live(key, now) for key in keys]

    def incr(self, key: str, ttl_seconds: float) -> int:
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            count = int(self._live(key, now) or 0) + 1
            self._values[key] = (str(count), now + ttl_seconds)
            return count

    def set(self, key: str, value: str, ttl_seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            self._values[key] = (value, now + ttl_seconds)

    def delete(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._next_prune = 0.0


_local = _LocalValues()
_redis_state: dict[str, object] = {"client": None, "url": None, "down_until": 0.0}


def _redis():
    """A Redis client with short timeouts, or None (no Redis, or it failed a moment ago)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url or time.monotonic() < _redis_state["down_until"]:
        return None
    if _redis_state["client"] is None or _redis_state["url"] != url:
        import redis

        _redis_state["client"] = redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)
        _redis_state["url"] = url
    return _redis_state["client"]


def _redis_failed(exc: Exception) -> None:
    logger.warning("shared counters: Redis unavailable (%s); counting in-process", type(exc).__name__)
    _redis_state["down_until"] = time.monotonic() + REDIS_RETRY_SECONDS


def window_number(*, now: float, window_seconds: int) -> int:
    """The fixed window of `window_seconds` that `now` (epoch seconds) falls in."""
    return int(now // window_seconds)


def shared_get_many(*, keys: Sequence[str]) -> list[str | None]:
    """The values of `keys` (None where absent or expired), in one round trip."""
    if not keys:
        return []
    conn = _redis()
    if conn is not None:
        try:
            return [None if value is None else value.decode() for value in conn.mget(list(keys))]
        except Exception as exc:  # any Redis error: fall back, never refuse a request because of it
            _redis_failed(exc)
    return _local.get_many(keys)


def shared_incr(*, key: str, ttl_seconds: int) -> int:
    """Add one to the counter `key` (kept `ttl_seconds` after this write); returns the new count."""
    conn = _redis()
    if conn is not None:
        try:
            pipe = conn.pipeline()
            pipe.incr(key)
            pipe.expire(key, ttl_seconds)
            return int(pipe.execute()[0])
        except Exception as exc:
            _redis_failed(exc)
    return _local.incr(key, ttl_seconds)


def shared_set(*, key: str, value: str, ttl_seconds: int) -> None:
    """Store `value` under `key` for `ttl_seconds`."""
    conn = _redis()
    if conn is not None:
        try:
            conn.set(key, value, ex=ttl_seconds)
            return
        except Exception as exc:
            _redis_failed(exc)
    _local.set(key, value, ttl_seconds)


def shared_delete(*, keys: Sequence[str]) -> None:
    """Forget `keys` (in Redis, and in this process in case they were counted here while Redis was down)."""
    _local.delete(keys)
    conn = _redis()
    if conn is not None and keys:
        try:
            conn.delete(*keys)
        except Exception as exc:
            _redis_failed(exc)


def shared_counters_reset() -> None:
    """Forget the in-process values and the Redis back-off (tests; Redis keys expire by themselves)."""
    _local.clear()
    _redis_state.update(client=None, url=None, down_until=0.0)


def client_address(request) -> str:
    """The client's address. Behind the documented nginx (POSINV_BEHIND_HTTPS_PROXY,
    docs/operations.md) every request comes from the proxy, so the address is the
    last X-Forwarded-For entry: the one nginx appended ($proxy_add_x_forwarded_for),
    which a client cannot forge (entries it writes itself come before it).
    Otherwise the peer address; X-Forwarded-For is then ignored."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR") or "unknown"
