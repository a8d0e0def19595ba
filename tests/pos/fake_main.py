"""A main system as a register node sees it over real HTTP, small and
strict, for the node's side of faults the real main system no longer
produces: an older main that refuses a whole batch for one record (with or
without naming the entry), and a main restored from a backup (its watermark
behind what the node took as delivered)."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeMain:
    def __init__(self, *, code: str = "R1", token: str):
        self.code, self.token = code, token
        self.received: dict[int, dict] = {}
        self.poison: set[int] = set()  # entry nos. whose batch is refused whole
        self.name_the_entry = True  # the 400 names the entry (`index`) or not
        self.posts = 0
        self.lock = threading.Lock()

    def watermark(self) -> int:
        through = 0
        while through + 1 in self.received:
            through += 1
        return through

    def restore(self, *, through: int) -> None:
        """As if restored from a backup taken when it held entries through `through`."""
        with self.lock:
            for number in [n for n in self.received if n > through]:
                del self.received[number]

    def settings(self) -> dict:
        return {"code": self.code, "name": "Till", "location": "S1", "location_name": "Store 1",
                "sync_type": "push", "tables": ["pos_process", "receipt", "receipt_line", "payment_line",
                                                "customer", "stock_count"],
                "records_per_run": 500, "interval_seconds": 30, "currency": "EUR",
                "last_applied_entry_no": self.watermark()}

    def entries(self, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.posts += 1
            batch = body["entries"]
            bad = [index for index, entry in enumerate(batch) if entry["entry_no"] in self.poison]
            if bad:
                errors = [{"field": f"entries[{index}].record.total", "reason": "too large", "code": "invalid",
                           **({"index": index} if self.name_the_entry else {})} for index in bad]
                return 400, {"errors": errors}
            duplicate = sum(1 for entry in batch if entry["entry_no"] in self.received)
            for entry in batch:
                self.received.setdefault(entry["entry_no"], entry)
            through = self.watermark()
            later = [n for n in self.received if n > through]
            missing = {"from": through + 1, "through": min(later) - 1} if later else None
            return 200, {"applied": len(batch) - duplicate, "duplicate": duplicate, "failed": 0,
                         "waiting": len(later), "released": 0, "conflict": 0, "failures": [], "duplicates": [],
                         "conflicts": [], "last_applied_entry_no": through, "missing": missing}


@contextmanager
def fake_main(*, token: str, code: str = "R1"):
    main = FakeMain(code=code, token=token)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Token {main.token}":
                self._answer(401, {"errors": [{"field": "token", "reason": "invalid token", "code": "auth"}]})
                return False
            return True

        def do_GET(self):
            if not self._authorized():
                return
            if self.path.rstrip("/") == f"/api/v1/registers/{main.code}/settings":
                self._answer(200, main.settings())
            else:
                self._answer(404, {"errors": [{"field": "path", "reason": "not found", "code": "not_found"}]})

        def do_POST(self):
            if not self._authorized():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path.rstrip("/") == f"/api/v1/registers/{main.code}/entries":
                self._answer(*main.entries(body))
            else:
                self._answer(404, {"errors": [{"field": "path", "reason": "not found", "code": "not_found"}]})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        main.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield main
    finally:
        server.shutdown()
        server.server_close()
