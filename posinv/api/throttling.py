"""Failed-token throttling: a client address that sends more than
`POSINV_AUTH_FAILURES_PER_MINUTE` bad tokens within one minute is answered
429 with `Retry-After` until that minute is over, whatever token it sends.

The check runs before the token is looked up, so a blocked client learns
nothing about the tokens it tries. Counters live in Redis when REDIS_URL is
set (every web process and host shares them) and in this process otherwise.
A Redis outage must not stop tills from selling, so on a Redis error the
counters fall back to this process for a few seconds and the request goes on.
Valid tokens never count; only failures do, so a busy till is never slowed."""
from __future__ import annotations

import logging
import math
import threading
import time

from django.conf import settings
from rest_framework import exceptions

from posinv.services.tokens import token_find

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
KEY_PREFIX = "posinv:authfail:"
# After a Redis error, counters stay in-process this long before Redis is tried again:
# a down Redis must not add a connect timeout to every request.
REDIS_RETRY_SECONDS = 5.0


class _LocalCounters:
    """Fixed one-minute windows in this process (the fallback)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def get(self, client: str, window: int) -> int:
        with self._lock:
            return self._counts.get((client, window), 0)

    def incr(self, client: str, window: int) -> int:
        with self._lock:
            # Forget old windows so the table stays as small as the current minute's clients.
            for key in [k for k in self._counts if k[1] < window]:
                del self._counts[key]
            self._counts[(client, window)] = self._counts.get((client, window), 0) + 1
            return self._counts[(client, window)]

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


_local = _LocalCounters()
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
    logger.warning("auth throttle: Redis unavailable (%s); counting in-process", type(exc).__name__)
    _redis_state["down_until"] = time.monotonic() + REDIS_RETRY_SECONDS


def _limit() -> int:
    return int(getattr(settings, "POSINV_AUTH_FAILURES_PER_MINUTE", 20))


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


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


def auth_failures_count(*, client: str, now: float | None = None) -> int:
    """Failed token attempts of `client` in the current minute."""
    window = _window(time.time() if now is None else now)
    conn = _redis()
    if conn is not None:
        try:
            return int(conn.get(f"{KEY_PREFIX}{client}:{window}") or 0)
        except Exception as exc:  # any Redis error: fall back, never refuse a till because of it
            _redis_failed(exc)
    return _local.get(client, window)


def auth_failure_record(*, client: str, now: float | None = None) -> int:
    """Count one failed token attempt of `client`; returns the minute's count."""
    window = _window(time.time() if now is None else now)
    conn = _redis()
    if conn is not None:
        try:
            key = f"{KEY_PREFIX}{client}:{window}"
            pipe = conn.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS * 2)
            return int(pipe.execute()[0])
        except Exception as exc:
            _redis_failed(exc)
    return _local.incr(client, window)


def auth_failures_reset() -> None:
    """Forget the in-process counters and the Redis back-off (tests; Redis keys expire by themselves)."""
    _local.clear()
    _redis_state.update(client=None, url=None, down_until=0.0)


def throttled_token_find(request, raw: str):
    """`token_find(raw)` guarded by the failure throttle: raises `Throttled`
    (429, Retry-After) while the client is over its limit, and counts a miss."""
    now = time.time()
    client = client_address(request)
    wait = math.ceil(WINDOW_SECONDS - (now % WINDOW_SECONDS))
    if auth_failures_count(client=client, now=now) >= _limit():
        raise exceptions.Throttled(wait=wait, detail="Too many failed tokens from this address.")
    token = token_find(raw)
    if token is None:
        auth_failure_record(client=client, now=now)
    return token
