"""A fake wholesaler feed: serves a CSV or XML file (SKU, EAN, quantity,
price) at /feed.csv or /feed.xml, optionally behind a bearer token; tests
set the rows (or raw text, to break it) and can make it unreachable (503)."""
from __future__ import annotations

from xml.sax.saxutils import escape

from tests.fakes.cartbase import FakeServer, Reply, Request


class FakeWholesaler(FakeServer):
    def __init__(self, *, token: str = ""):
        super().__init__()
        self.token = token
        self.rows: list[dict] = []
        self.raw: str | None = None
        self.down = False

    def set_rows(self, rows: list[dict]) -> None:
        with self.lock:
            self.rows, self.raw = rows, None

    def csv_text(self) -> str:
        lines = ["sku;ean;quantity;price"]
        lines += [f"{r.get('sku', '')};{r.get('ean', '')};{r.get('quantity', '')};{r.get('price', '')}"
                  for r in self.rows]
        return "\n".join(lines) + "\n"

    def xml_text(self) -> str:
        items = "".join("<product>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in r.items()) + "</product>"
                        for r in self.rows)
        return f"<?xml version='1.0'?><products>{items}</products>"

    def handle(self, request: Request) -> Reply:
        if self.down:
            return Reply(503, {"error": "maintenance"})
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "unauthorized"})
        if request.path == "/feed.csv":
            return TextReply(self.raw if self.raw is not None else self.csv_text(), "text/csv")
        if request.path == "/feed.xml":
            return TextReply(self.raw if self.raw is not None else self.xml_text(), "application/xml")
        return Reply(404, {"error": "not found"})


class TextReply(Reply):
    """A reply whose body is text, not JSON."""

    def __init__(self, text: str, content_type: str):
        super().__init__(200, None, {"Content-Type": content_type})
        self.text = text
