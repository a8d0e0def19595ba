"""A fake weighing-cabinet vendor cloud on a real HTTP socket (127.0.0.1).

It serves what a cabinet vendor's readings endpoint serves:

    GET /v2/cabinets/{serial}/readings?since=<ISO>&limit=<n>&cursor=<opaque>
    Authorization: Bearer <api key>
    200 {"readings": [{"tray_id", "weight_g", "position", "read_at"}], "next_cursor": "..." | null}

Readings come oldest first; `since` is inclusive (so a client repeating its
last read time sees that reading again and must dedupe); `limit` is clamped
to the vendor's page maximum; the cursor is opaque. Failures are scripted:
`fail_next(503)`, a 429 with Retry-After, a wrong key (401), a body that is
not JSON, or a `delay` that makes every answer slow."""
from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Scripted:
    status: int
    body: bytes
    headers: dict


class FakeCabinetVendor:
    """Start with `with FakeCabinetVendor() as vendor:`; `vendor.url(serial)` is the endpoint."""

    def __init__(self, *, api_key: str = "vendor-key", page_max: int = 100, rate_per_minute: int | None = None):
        self.api_key = api_key
        self.page_max = page_max
        self.rate_per_minute = rate_per_minute
        self.delay = 0.0
        self.readings: dict[str, list[dict]] = {}
        self.requests: list[dict] = []
        self._scripted: deque[Scripted] = deque()
        self._at_request: dict[int, Scripted] = {}
        self._lock = threading.Lock()
        self._window: deque[float] = deque()
        self._server: ThreadingHTTPServer | None = None

    # -- scripting -------------------------------------------------------
    def add(self, serial: str, *, tray_id: str, weight_g: str, read_at: str, position: str = "") -> None:
        with self._lock:
            self.readings.setdefault(serial, []).append(
                {"tray_id": tray_id, "weight_g": weight_g, "position": position, "read_at": read_at}
            )

    def fail_next(self, status: int, *, times: int = 1, retry_after: int | None = None, body: str | None = None):
        headers = {"Content-Type": "application/json"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        payload = (body if body is not None else json.dumps({"error": f"scripted {status}"})).encode()
        with self._lock:
            for _ in range(times):
                self._scripted.append(Scripted(status, payload, headers))

    def fail_request(self, number: int, status: int, body: str = "bad gateway") -> None:
        """Answer the `number`-th request from now on (1 = the next) with `status`."""
        with self._lock:
            self._at_request[len(self.requests) + number] = Scripted(
                status, body.encode(), {"Content-Type": "text/plain"}
            )

    def garble_next(self) -> None:
        """The next answer is a 200 whose body is an HTML error page, as a broken proxy sends."""
        with self._lock:
            self._scripted.append(
                Scripted(200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
            )

    # -- server ----------------------------------------------------------
    def url(self, serial: str) -> str:
        assert self._server is not None, "start the vendor first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v2/cabinets/{serial}/readings"

    def __enter__(self) -> FakeCabinetVendor:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                return

            def do_GET(self):  # noqa: N802 - http.server naming
                status, body, headers = vendor._answer(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a slow answer, as clients do

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- behaviour -------------------------------------------------------
    def _answer(self, request: BaseHTTPRequestHandler) -> tuple[int, bytes, dict]:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        auth = request.headers.get("Authorization", "")
        with self._lock:
            self.requests.append({"path": parts.path, "query": query, "authorization": auth})
            scripted = self._at_request.pop(len(self.requests), None)
            if scripted is None and self._scripted:
                scripted = self._scripted.popleft()
        if self.delay:
            time.sleep(self.delay)
        if scripted is not None:
            return scripted.status, scripted.body, scripted.headers
        if auth != f"Bearer {self.api_key}":
            return _json(401, {"error": "invalid_api_key", "message": "API key missing or wrong"})
        if self.rate_per_minute is not None:
            now = time.monotonic()
            with self._lock:
                while self._window and now - self._window[0] > 60:
                    self._window.popleft()
                if len(self._window) >= self.rate_per_minute:
                    retry = int(60 - (now - self._window[0])) + 1
                    return _json(429, {"error": "rate_limited"}, {"Retry-After": str(retry)})
                self._window.append(now)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 4 or segments[:2] != ["v2", "cabinets"] or segments[3] != "readings":
            return _json(404, {"error": "not_found"})
        serial = segments[2]
        if serial not in self.readings:
            return _json(404, {"error": "unknown_cabinet", "message": f"no cabinet {serial}"})
        try:
            limit = min(int(query.get("limit", self.page_max)), self.page_max)
            since = datetime.fromisoformat(query["since"].replace("Z", "+00:00")) if "since" in query else None
            after = _decode(query["cursor"]) if "cursor" in query else None
        except (ValueError, KeyError):
            return _json(400, {"error": "bad_request", "message": "limit, since or cursor is invalid"})
        with self._lock:
            rows = sorted(self.readings[serial], key=_order)
        if since is not None:
            rows = [r for r in rows if _when(r) >= since]
        if after is not None:
            rows = [r for r in rows if _order(r) > after]
        page, rest = rows[:limit], rows[limit:]
        next_cursor = _encode(_order(page[-1])) if rest and page else None
        return _json(200, {"readings": page, "next_cursor": next_cursor})


def _when(row: dict) -> datetime:
    return datetime.fromisoformat(row["read_at"].replace("Z", "+00:00"))


def _order(row: dict) -> tuple[str, str]:
    return (_when(row).isoformat(), row["tray_id"])


def _encode(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode(cursor: str) -> tuple[str, str]:
    return tuple(json.loads(base64.urlsafe_b64decode(cursor.encode())))


def _json(status: int, data: dict, headers: dict | None = None) -> tuple[int, bytes, dict]:
    return status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}
