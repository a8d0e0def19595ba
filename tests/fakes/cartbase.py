"""Shared machinery of the fake cart servers: a real HTTP server on a free
port of 127.0.0.1 (a thread of the test process, so workers in other
processes reach it over real HTTP), JSON helpers, and configurable faults:
occasional 5xx, a period of 429s with Retry-After, a leaky-bucket rate limit,
latency, and "slow answers" that apply a write but answer after the client's
timeout (an unknown outcome). Every request is logged with its arrival time
and the products it names (`calls`), so a test can bound how often a cart
was called, per product, while it was down."""
from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Faults:
    error_rate: float = 0.0  # share of requests answered 500/502/503
    throttle_until: float = 0.0  # monotonic time until which every request gets 429
    retry_after: float = 1.0
    bucket_capacity: float = 0.0  # 0: no rate limit
    bucket_leak_per_second: float = 2.0
    latency: float = 0.0
    slow_writes: int = 0  # next N writes are applied but answered after `slow_seconds`
    slow_seconds: float = 3.0
    seed: int = 7
    rng: random.Random = field(default_factory=lambda: random.Random(7))


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it: when it arrived (monotonic), what it
    asked, what it was answered and the SKUs of the products it named."""

    at: float
    method: str
    path: str
    status: int
    skus: tuple[str, ...] = ()


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler, body: bytes):
        self.method = handler.command
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.headers = handler.headers
        self.body = body

    def json(self):
        return json.loads(self.body or b"null")


class Reply:
    def __init__(self, status: int = 200, body=None, headers: dict | None = None, delay: float = 0.0):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.delay = delay


class FakeServer:
    """Subclasses implement `handle(request) -> Reply` under `self.lock`."""

    def __init__(self):
        self.faults = Faults()
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, int]] = []
        self.calls: list[Call] = []
        self.holds: list[tuple[float, str, int]] = []  # (monotonic time, ref, quantity) per write
        self._bucket = 0.0
        self._bucket_stamp = time.monotonic()
        self._server: ThreadingHTTPServer | None = None
        # Called with each request before it is answered (in the server's thread):
        # something that happens on our side while a call is in flight.
        self.on_request: Callable[[Request], None] | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = fake.dispatch(Request(self, body))
                if reply.delay:
                    time.sleep(reply.delay)
                text = getattr(reply, "text", None)
                if text is not None:
                    data = text.encode()
                else:
                    data = b"" if reply.body is None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    if "Content-Type" not in reply.headers:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, str(value))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): the write was applied anyway

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- faults ---------------------------------------------------------------
    def throttle_for(self, seconds: float, retry_after: float = 1.0) -> None:
        with self.lock:
            self.faults.throttle_until = time.monotonic() + seconds
            self.faults.retry_after = retry_after

    def dispatch(self, request: Request) -> Reply:
        if self.on_request:
            self.on_request(request)
        with self.lock:
            faults = self.faults
            now = time.monotonic()
            skus = self.skus_named(request)
            reply = None
            if now < faults.throttle_until:
                reply = self.too_many(faults.retry_after)
            elif faults.bucket_capacity:
                self._bucket = max(0.0, self._bucket - (now - self._bucket_stamp) * faults.bucket_leak_per_second)
                self._bucket_stamp = now
                if self._bucket + 1 > faults.bucket_capacity:
                    reply = self.too_many(max(1.0 / faults.bucket_leak_per_second, 0.1))
                else:
                    self._bucket += 1
            if reply is None and faults.error_rate and faults.rng.random() < faults.error_rate:
                status = faults.rng.choice([500, 502, 503])
                reply = Reply(status, {"errors": "Internal Server Error"})
            if reply is None:
                reply = self.handle(request)
            self.requests.append((request.method, request.path, reply.status))
            self.calls.append(Call(now, request.method, request.path, reply.status, skus))
        if faults.latency and not reply.delay:
            reply.delay = faults.latency
        return reply

    def too_many(self, retry_after: float) -> Reply:
        return Reply(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                                     "uninterrupted service."}, {"Retry-After": f"{retry_after:g}"})

    def take_slow_write(self) -> float:
        """Called by a write that was applied: how long to hold the answer."""
        if self.faults.slow_writes > 0:
            self.faults.slow_writes -= 1
            return self.faults.slow_seconds
        return 0.0

    def handle(self, request: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    def skus_named(self, request: Request) -> tuple[str, ...]:
        """The SKUs of the products a request reads or writes (subclasses know their URLs and bodies)."""
        return ()

    def calls_between(self, start: float, end: float, *, sku: str | None = None) -> list[Call]:
        """Requests that arrived in [start, end) (monotonic), only those naming `sku` if given."""
        with self.lock:
            return [c for c in self.calls if start <= c.at < end and (sku is None or sku in c.skus)]

    def count(self, method: str | None = None, path_contains: str = "", status: int | None = None) -> int:
        with self.lock:
            return sum(1 for m, p, s in self.requests
                       if (method is None or m == method) and path_contains in p and (status is None or s == status))
