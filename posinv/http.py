"""HTTP helpers every app may use (the core imports no app, so whoever talks
HTTP, a connector, the cabinet pull or the outbound log, takes them from here)."""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds (`120`, `1.5`) or an
    HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`, RFC 9110 §10.2.3). A date in
    the past is 0. None when the header is absent or unreadable, so each
    caller picks its own default explicitly. The one parser: three copies
    once gave three answers for the same header."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # float() accepts "nan" and "inf": neither is a wait anybody meant.
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # an HTTP date is always GMT; a zone-less one is not a valid header
    current = time.time() if now is None else now
    return max(round(when.timestamp() - current, 3), 0.0)
