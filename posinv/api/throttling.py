"""Failed-token throttling: a client address that sends more than
`POSINV_AUTH_FAILURES_PER_MINUTE` bad tokens within one minute is answered
429 with `Retry-After` until that minute is over, whatever token it sends.

The check runs before the token is looked up, so a blocked client learns
nothing about the tokens it tries. The counters are the shared ones of
posinv/services/shared_counters.py (Redis across web processes, in-process
while Redis is down, so a Redis outage never stops a till selling).
Valid tokens never count; only failures do, so a busy till is never slowed."""
from __future__ import annotations

import math
import time

from django.conf import settings
from rest_framework import exceptions

from posinv.services.shared_counters import (
    client_address,
    shared_counters_reset,
    shared_get_many,
    shared_incr,
    window_number,
)
from posinv.services.tokens import token_find

__all__ = ["auth_failure_record", "auth_failures_count", "auth_failures_reset", "client_address",
           "throttled_token_find"]

WINDOW_SECONDS = 60
KEY_PREFIX = "posinv:authfail:"


def _limit() -> int:
    return int(getattr(settings, "POSINV_AUTH_FAILURES_PER_MINUTE", 20))


def _key(client: str, now: float) -> str:
    return f"{KEY_PREFIX}{client}:{window_number(now=now, window_seconds=WINDOW_SECONDS)}"


def auth_failures_count(*, client: str, now: float | None = None) -> int:
    """Failed token attempts of `client` in the current minute."""
    [count] = shared_get_many(keys=[_key(client, time.time() if now is None else now)])
    return int(count or 0)


def auth_failure_record(*, client: str, now: float | None = None) -> int:
    """Count one failed token attempt of `client`; returns the minute's count."""
    return shared_incr(key=_key(client, time.time() if now is None else now), ttl_seconds=WINDOW_SECONDS * 2)


def auth_failures_reset() -> None:
    """Forget the in-process counters (token and login failures alike) and the
    Redis back-off (tests; Redis keys expire by themselves)."""
    shared_counters_reset()


def throttled_token_find(request, raw: str, join=None):
    """`token_find(raw, join=join)` guarded by the failure throttle: raises `Throttled`
    (429, Retry-After) while the client is over its limit, and counts a miss."""
    now = time.time()
    client = client_address(request)
    wait = math.ceil(WINDOW_SECONDS - (now % WINDOW_SECONDS))
    if auth_failures_count(client=client, now=now) >= _limit():
        raise exceptions.Throttled(wait=wait, detail="Too many failed tokens from this address.")
    token = token_find(raw, join=join)
    if token is None:
        auth_failure_record(client=client, now=now)
    return token
