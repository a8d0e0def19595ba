"""One structured log line per outbound HTTP request: every call we make to a
cart, an external store or wholesaler, a cabinet vendor, a register node or
(from a node) the main system.

Whoever talks HTTP builds its `requests.Session` with `outbound_session()`
and keeps its own logic (timeouts, retries, error mapping). The session's
transport adapter writes `{"event": "outbound_call", ...}` on the
"posinv.outbound" logger for each request it sends, answered or not, each
redirect hop included. The line holds the system and connector, method,
host, path (credential query parameters redacted), status or error class,
duration, the Retry-After a refusal asked for, the attempt when the caller
counts them, and the job run around the call. Headers and bodies are never
read into it, so the Authorization header, API keys and passwords cannot
reach it; the redacting filter on the handler stays the second guard."""
from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ops.logging import redact_query
from posinv.http import retry_after_seconds
from posinv.services.runs import job_run_current_id

logger = logging.getLogger("posinv.outbound")


def outbound_session(*, system: str, connector: str, attempt: int | None = None) -> requests.Session:
    """A `requests.Session` that logs one `outbound_call` line per request.

    `system` is the code of what is called (store, cabinet or register code),
    `connector` its kind (the cart platform, `cabinet_vendor`,
    `register_node`, `main_system`); `attempt` is the caller's count of tries
    of this work, when it keeps one."""
    if not connector:
        raise ValueError("outbound_session needs the connector kind that names the calls in the log")
    session = requests.Session()
    adapter = OutboundLogAdapter(system=system, connector=connector, attempt=attempt)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class OutboundLogAdapter(HTTPAdapter):
    """The standard transport, timing each request it sends and logging it.

    An adapter rather than a response hook: a hook never sees a timeout or a
    refused connection, and Session.send also runs for each redirect."""

    def __init__(self, *, system: str, connector: str, attempt: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.system = system
        self.connector = connector
        self.attempt = attempt

    def send(self, request: requests.PreparedRequest, stream: bool = False, **kwargs) -> requests.Response:
        started = time.monotonic()
        try:
            response = super().send(request, stream=stream, **kwargs)
            if not stream:
                # Read the body here so the duration covers the whole answer
                # (Session.send would read it right after, outside the timing).
                response.content  # noqa: B018
        except requests.RequestException as exc:
            self._log(request, started, error=exc)
            raise
        self._log(request, started, response=response)
        return response

    def _log(self, request: requests.PreparedRequest, started: float, *, response: requests.Response | None = None,
             error: Exception | None = None) -> None:
        line = outbound_line(
            system=self.system, connector=self.connector, method=request.method or "", url=request.url or "",
            duration_ms=round((time.monotonic() - started) * 1000, 1), response=response, error=error,
            attempt=self.attempt,
        )
        logger.log(logging.WARNING if line["outcome"] == "error" else logging.INFO, json.dumps(line, default=str))


def outbound_line(*, system: str, connector: str, method: str, url: str, duration_ms: float,
                  response: requests.Response | None = None, error: Exception | None = None,
                  attempt: int | None = None) -> dict:
    """The fields of one `outbound_call` line (see docs/operations.md, Logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"  # userinfo (user:password@) is left out on purpose
    query = redact_query(parts.query)
    line: dict = {
        "event": "outbound_call",
        "system": system,
        "connector": connector,
        "method": method,
        "host": host,
        "path": (parts.path or "/") + (f"?{query}" if query else ""),
    }
    if response is not None:
        status = response.status_code
        line["status"] = status
        line["outcome"] = "ok" if status < 400 else ("refused" if status < 500 else "error")
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            line["retry_after"] = retry_after
    else:
        # One type per field keeps log indexes happy: the status stays a
        # number (null here) and the error class has a field of its own.
        line["status"] = None
        line["outcome"] = "error"
        line["error"] = type(error).__name__ if error is not None else "unknown"
    line["duration_ms"] = duration_ms
    if attempt is not None:
        line["attempt"] = attempt
    run_id = job_run_current_id()
    if run_id is not None:
        line["job_run_id"] = run_id
    return line
