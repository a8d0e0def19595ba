"""One structured log line per sync call (every request to the device and
integration API): what was called, for whom, how many records, how long it
took and the outcome. The Authorization header and the body are never
logged; the redacting filter guards whatever else reaches the line."""
from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty

logger = logging.getLogger("posinv.sync")

# Answer fields worth a figure in the line: how many records a call moved.
_COUNT_KEYS = ("applied", "duplicate", "failed", "waiting", "accepted", "posted", "received", "count",
               "entries", "readings", "orders", "sent", "highest_entry_no")


class SyncCallLogMiddleware:
    """Logs `{"event": "sync_call", ...}` for each request under POSINV_SYNC_LOG_PREFIXES."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = tuple(getattr(settings, "POSINV_SYNC_LOG_PREFIXES", ("/api/v1/",)))

    def __call__(self, request):
        if not request.path.startswith(self.prefixes) or not logger.isEnabledFor(logging.INFO):
            return self.get_response(request)
        started = time.monotonic()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        user = request.__dict__.get("user")
        if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
            # Nothing looked at the user (the call ended before authentication):
            # loading it here would cost a session query for a log line.
            who = "unauthenticated"
        elif user is not None and getattr(user, "is_authenticated", False):
            who = str(user) if not hasattr(user, "get_username") else f"user:{user.get_username()}"
        else:
            who = "anonymous"
        status = response.status_code
        line = {
            "event": "sync_call",
            "method": request.method,
            "path": request.path,
            "view": match.view_name if match else "",
            "for": who,
            "status": status,
            "outcome": "ok" if status < 400 else ("refused" if status < 500 else "error"),
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        counts = _counts(getattr(response, "data", None))
        if counts:
            line["counts"] = counts
        logger.info(json.dumps(line, default=str))
        return response


def _counts(data) -> dict:
    if isinstance(data, dict):
        found = {key: data[key] for key in _COUNT_KEYS if isinstance(data.get(key), int)}
        if "count" not in found and isinstance(data.get("results"), list):
            found["results"] = len(data["results"])
        if isinstance(data.get("errors"), list):
            found["errors"] = len(data["errors"])
        return found
    if isinstance(data, list):
        return {"results": len(data)}
    return {}
