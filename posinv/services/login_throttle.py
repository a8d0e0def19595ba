"""Failed password logins (issue #11): after `POSINV_LOGIN_FAILURES_PER_USER`
failures for one username (from any address), or
`POSINV_LOGIN_FAILURES_PER_ADDRESS` from one client address (for any
usernames), within a window of `POSINV_LOGIN_LOCKOUT_SECONDS`, that username
or address is locked out for `POSINV_LOGIN_LOCKOUT_SECONDS`: every attempt is
refused without its password being checked, a correct one included, so
guessing on gains nothing. A successful login clears its username's count.

Failures are counted in fixed windows (epoch multiples of the lockout time);
the lockout itself runs from the failure that reached the limit. Every
username counts, existing or not, so a lockout says nothing about which
accounts exist. Counters and lockouts are the shared ones of
posinv/services/shared_counters.py: one figure for every web process while
Redis is up, per process while it is down. Each lockout writes one JSON log
line (event `login_lockout`); the password is never passed here.

`posinv.auth_backends.ThrottledModelBackend` applies this to every
`django.contrib.auth.authenticate()` call; the admin login form words the
refusal (posinv/admin.py)."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings

from posinv.services.shared_counters import shared_delete, shared_get_many, shared_incr, shared_set, window_number

logger = logging.getLogger("posinv.login_throttle")

FAILURES_PREFIX = "posinv:loginfail:"
LOCKOUT_PREFIX = "posinv:loginlock:"


def clock() -> float:
    """Epoch seconds; the one place the throttle reads the time (tests move it here)."""
    return time.time()


@dataclass(frozen=True)
class LoginLockout:
    """A username or client address that may not try to log in until `until` (epoch seconds)."""

    scope: str  # "username" or "address"
    until: float

    def retry_after_seconds(self, *, now: float | None = None) -> int:
        return max(1, math.ceil(self.until - (clock() if now is None else now)))

    def message(self, *, now: float | None = None) -> str:
        """What the login page says instead of "wrong password"."""
        minutes = max(1, math.ceil(self.retry_after_seconds(now=now) / 60))
        unit = "minute" if minutes == 1 else "minutes"
        return (f"Too many failed logins for this account or from this address. "
                f"Please try again in about {minutes} {unit}.")


@dataclass(frozen=True)
class _Subject:
    scope: str
    key: str  # what goes into the shared keys
    limit: int


def _lockout_seconds() -> int:
    return int(settings.POSINV_LOGIN_LOCKOUT_SECONDS)


def _subjects(*, username: str, address: str | None) -> list[_Subject]:
    # The username is whatever was typed (any length, any characters): its hash keeps keys short and clean.
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    subjects = [_Subject("username", f"user:{digest}", int(settings.POSINV_LOGIN_FAILURES_PER_USER))]
    if address:
        subjects.append(_Subject("address", f"addr:{address}",
                                 int(settings.POSINV_LOGIN_FAILURES_PER_ADDRESS)))
    return subjects


def _failures_key(subject: _Subject, now: float) -> str:
    return f"{FAILURES_PREFIX}{subject.key}:{window_number(now=now, window_seconds=_lockout_seconds())}"


def login_lockout_find(*, username: str, address: str | None, now: float | None = None) -> LoginLockout | None:
    """The lockout that refuses a login as `username` from `address` (None: the
    address is unknown) right now, or None when it may be tried."""
    now = clock() if now is None else now
    subjects = _subjects(username=username, address=address)
    values = shared_get_many(keys=[f"{LOCKOUT_PREFIX}{subject.key}" for subject in subjects])
    lockouts = [LoginLockout(scope=subject.scope, until=float(value))
                for subject, value in zip(subjects, values, strict=True) if value is not None]
    active = [lockout for lockout in lockouts if lockout.until > now]
    return max(active, key=lambda lockout: lockout.until, default=None)


def login_failure_record(*, username: str, address: str | None, now: float | None = None) -> list[LoginLockout]:
    """Count one failed login as `username` from `address`; returns the lockouts
    this failure started (one JSON log line each), usually none."""
    now = clock() if now is None else now
    lockout_seconds = _lockout_seconds()
    started = []
    for subject in _subjects(username=username, address=address):
        count = shared_incr(key=_failures_key(subject, now), ttl_seconds=lockout_seconds * 2)
        # Exactly the limit: concurrent attempts that slipped past the check go over
        # it without starting (and logging) the same lockout again.
        if count != subject.limit:
            continue
        lockout = LoginLockout(scope=subject.scope, until=now + lockout_seconds)
        # The key outlives the lockout a little; `until` (not the key's expiry) decides.
        shared_set(key=f"{LOCKOUT_PREFIX}{subject.key}", value=repr(lockout.until), ttl_seconds=lockout_seconds + 60)
        line = {"event": "login_lockout", "scope": subject.scope, "failures": count,
                "locked_seconds": lockout_seconds, "address": address}
        if subject.scope == "username":
            # Only the locked account's name: on an address lockout the last name typed
            # is noise, and a typed name is now and then somebody's password.
            line["username"] = username
        logger.warning(json.dumps(line))
        started.append(lockout)
    return started


def login_success_record(*, username: str, now: float | None = None) -> None:
    """A successful login as `username`: its failures so far no longer count
    (the address's do: a valid account must not wipe an address's record)."""
    now = clock() if now is None else now
    [user_subject] = _subjects(username=username, address=None)
    shared_delete(keys=[_failures_key(user_subject, now)])
