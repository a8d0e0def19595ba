"""A fake WooCommerce REST API v3, as strict as the real one (platforms.md):
Basic auth with consumer key and secret; products and variations with
page/per_page pagination (per_page at most 100, X-WP-Total, X-WP-TotalPages,
Link rel=next/prev, a page past the end is a 400); the batch endpoints (at
most 100 items in create+update+delete, 413
`woocommerce_rest_request_entity_too_large` above; a bad item fails inside a
200); orders with WooCommerce's stock effects per status (reduced on
processing/on-hold/completed, restored on cancel, on a refund only when
restocked, with the `_reduced_stock` / `_restock_refunded_items` line meta);
`modified_after` strictly after at one-second precision, in the site's local
time unless `dates_are_gmt=true`; errors shaped `{code, message, data:
{status}}`; and the shared faults of tests/fakes/cartbase.py (a host's 429
with Retry-After, occasional 5xx). The shop's clock can be moved on
(`advance`) so tests need not sleep across second boundaries."""
from __future__ import annotations

import base64
import itertools
import math
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from tests.fakes.cartbase import FakeServer, Reply, Request

BASE = "/wp-json/wc/v3"
MAX_BATCH = 100


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message, "data": {"status": status}})


class FakeWooCommerce(FakeServer):
    def __init__(self, *, key: str = "ck_test", secret: str = "cs_test", site_utc_offset_hours: float = -5):
        super().__init__()
        # The site's own time zone: without dates_are_gmt=true, modified_after
        # is read as the site's local time (platforms.md), so a client sending
        # GMT without the flag misses orders.
        self.site_utc_offset = timedelta(hours=site_utc_offset_hours)
        self.clock_offset = 0.0
        self.key, self.secret = key, secret
        self.products: dict[int, dict] = {}
        self.variations: dict[int, dict[int, dict]] = {}
        self.orders: list[dict] = []
        self._ids = itertools.count(501)
        self.batch_calls = 0
        self.batch_sizes: list[int] = []

    # -- test helpers ------------------------------------------------------------
    def add_product(self, *, sku: str, stock: int | None = 0, barcode: str = "") -> dict:
        with self.lock:
            pid = next(self._ids)
            product = {"id": pid, "name": sku, "sku": sku, "type": "simple", "manage_stock": stock is not None,
                       "stock_quantity": stock, "stock_status": "instock",
                       "meta_data": [{"key": "_global_unique_id", "value": barcode}] if barcode else []}
            self.products[pid] = product
            return product

    def add_variable(self, *, name: str, skus: dict[str, int]) -> dict:
        with self.lock:
            pid = next(self._ids)
            self.products[pid] = {"id": pid, "name": name, "sku": "", "type": "variable", "manage_stock": False,
                                  "stock_quantity": None, "meta_data": []}
            self.variations[pid] = {}
            for sku, stock in skus.items():
                vid = next(self._ids)
                self.variations[pid][vid] = {"id": vid, "sku": sku, "manage_stock": True, "stock_quantity": stock,
                                             "meta_data": []}
            return self.products[pid]

    def _all_items(self):
        yield from self.products.values()
        for children in self.variations.values():
            yield from children.values()

    def stock(self, sku: str) -> int | None:
        with self.lock:
            return next(item["stock_quantity"] for item in self._all_items() if item.get("sku") == sku)

    # -- orders and their stock effects -------------------------------------------
    # WooCommerce (wc-stock-functions.php) reduces managed stock when an order
    # turns processing, on-hold or completed (once: `_order_stock_reduced`),
    # recording `_reduced_stock` on each line, and restores exactly that on
    # cancel (or when the order goes back to pending); a refund gives stock
    # back only when the merchant ticks "restock" (`_restock_refunded_items`).
    # Marking an order "refunded" by status alone restocks nothing.
    TAKES_STOCK = ("processing", "on-hold", "completed")
    GIVES_BACK = ("cancelled", "pending")

    def now(self) -> datetime:
        """The shop's clock (GMT, whole seconds); `advance` moves it on without sleeping."""
        return (datetime.now(UTC) + timedelta(seconds=self.clock_offset)).replace(microsecond=0, tzinfo=None)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    def _touch(self, order: dict) -> None:
        stamp = self.now()
        order["date_modified_gmt"] = stamp.isoformat()
        order["date_modified"] = (stamp + self.site_utc_offset).isoformat()

    def _item(self, sku: str) -> dict:
        return next(i for i in self._all_items() if i.get("sku") == sku)

    def _set_meta(self, line: dict, key: str, value) -> None:
        line["meta_data"] = [m for m in line["meta_data"] if m["key"] != key]
        if value is not None:
            line["meta_data"].append({"id": next(self._ids), "key": key, "value": str(value)})

    def _meta(self, line: dict, key: str) -> int:
        return int(next((m["value"] for m in line["meta_data"] if m["key"] == key), 0))

    def _apply_status_stock(self, order: dict) -> None:
        if order["status"] in self.TAKES_STOCK and not order["_stock_reduced"]:
            for line in order["line_items"]:
                item = self._item(line["sku"])
                if item.get("manage_stock"):
                    item["stock_quantity"] -= line["quantity"]
                    self._set_meta(line, "_reduced_stock", line["quantity"])
            order["_stock_reduced"] = True
        elif order["status"] in self.GIVES_BACK and order["_stock_reduced"]:
            for line in order["line_items"]:
                reduced = self._meta(line, "_reduced_stock")
                if reduced:
                    self._item(line["sku"])["stock_quantity"] += reduced
                    self._set_meta(line, "_reduced_stock", None)
            order["_stock_reduced"] = False

    def place_order(self, *, lines: list[tuple[str, int]], status: str = "processing") -> dict:
        with self.lock:
            oid = next(self._ids)
            items = [{"id": next(self._ids), "sku": sku, "quantity": quantity, "name": sku, "meta_data": []}
                     for sku, quantity in lines]
            for sku, _ in lines:
                self._item(sku)  # an unknown SKU is a mistake of the test
            created = self.now()
            order = {"id": oid, "number": str(oid), "status": status, "date_created_gmt": created.isoformat(),
                     "date_created": (created + self.site_utc_offset).isoformat(), "line_items": items,
                     "refunds": [], "_stock_reduced": False, "_refunded": {}}
            self._touch(order)
            self._apply_status_stock(order)
            self.orders.append(order)
            return order

    def set_order_status(self, order: dict, status: str) -> None:
        with self.lock:
            order["status"] = status
            self._touch(order)
            self._apply_status_stock(order)

    def refund(self, order: dict, *, lines: dict[str, int] | None = None, restock: bool) -> None:
        """Refund `lines` (SKU -> quantity; all when None), restocking them if
        `restock`; a refund of everything makes the order "refunded"."""
        with self.lock:
            refunded_lines = []
            for line in order["line_items"]:
                quantity = line["quantity"] if lines is None else lines.get(line["sku"], 0)
                if not quantity:
                    continue
                refunded_lines.append({"id": line["id"], "quantity": -quantity})
                order["_refunded"][line["id"]] = order["_refunded"].get(line["id"], 0) + quantity
                if restock and order["_stock_reduced"]:
                    self._item(line["sku"])["stock_quantity"] += quantity
                    self._set_meta(line, "_reduced_stock", max(self._meta(line, "_reduced_stock") - quantity, 0))
                    self._set_meta(line, "_restock_refunded_items",
                                   self._meta(line, "_restock_refunded_items") + quantity)
            order["refunds"].append({"id": next(self._ids), "reason": "", "total": "-1.00"})
            if all(order["_refunded"].get(line["id"], 0) >= line["quantity"] for line in order["line_items"]):
                order["status"] = "refunded"
            self._touch(order)

    # -- HTTP --------------------------------------------------------------------
    def skus_named(self, request: Request) -> tuple[str, ...]:
        """Items of a batch write, or the products a GET asks for by `include`."""
        if request.method == "POST" and request.path.endswith("/batch"):
            try:
                body = request.json()
            except ValueError:
                return ()
            changes = body.get("update") if isinstance(body, dict) else None
            ids = [change.get("id") for change in changes or [] if isinstance(change, dict)]
        elif request.method == "GET" and request.query.get("include"):
            ids = request.query["include"].split(",")
        else:
            return ()
        by_id = {item["id"]: item.get("sku", "") for item in self._all_items()}
        return tuple(by_id[int(i)] for i in ids if str(i).isdigit() and int(i) in by_id)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return key == self.key and secret == self.secret

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith(BASE):
            return _error(404, "rest_no_route", "No route was found matching the URL and request method.")
        if not self._authorized(request):
            return _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        path = request.path[len(BASE):]
        if request.method == "GET" and path == "/products":
            return self._page(request, sorted(self.products.values(), key=lambda p: p["id"]))
        match = re.fullmatch(r"/products/(\d+)/variations", path)
        if request.method == "GET" and match:
            children = self.variations.get(int(match.group(1)))
            if children is None:
                return _error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            return self._page(request, sorted(children.values(), key=lambda v: v["id"]))
        if request.method == "POST" and path == "/products/batch":
            return self._batch(request, self.products)
        match = re.fullmatch(r"/products/(\d+)/variations/batch", path)
        if request.method == "POST" and match:
            children = self.variations.get(int(match.group(1)))
            if children is None:
                return _error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            return self._batch(request, children)
        if request.method == "GET" and path == "/orders":
            return self._orders(request)
        return _error(404, "rest_no_route", "No route was found matching the URL and request method.")

    def _page(self, request: Request, rows: list[dict]) -> Reply:
        try:
            per_page = int(request.query.get("per_page", 10))
            page = int(request.query.get("page", 1))
        except ValueError:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): per_page, page")
        if not 1 <= per_page <= 100:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        if page < 1:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): page")
        if request.query.get("include"):
            wanted = {int(x) for x in request.query["include"].split(",") if x}
            rows = [r for r in rows if r["id"] in wanted]
        total = len(rows)
        pages = math.ceil(total / per_page)
        if total and page > pages:
            return _error(400, "woocommerce_rest_invalid_page_number",
                          "The page number requested is larger than the number of pages available.")
        headers = {"X-WP-Total": total, "X-WP-TotalPages": pages}
        links = []
        if page > 1:
            links.append(f'<{self._link(request, page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{self._link(request, page + 1)}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        chosen = rows[(page - 1) * per_page:page * per_page]
        return Reply(200, [{k: v for k, v in row.items() if not k.startswith("_")} for row in chosen], headers)

    def _link(self, request: Request, page: int) -> str:
        return f"{self.url}{request.path}?{urlencode({**request.query, 'page': page})}"

    def _batch(self, request: Request, items: dict[int, dict]) -> Reply:
        body = request.json() or {}
        size = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
        if size > MAX_BATCH:
            return _error(413, "woocommerce_rest_request_entity_too_large",
                          f"Unable to accept more than {MAX_BATCH} items for this request.")
        self.batch_calls += 1
        self.batch_sizes.append(size)
        answered = []
        stamp = time.monotonic()
        for change in body.get("update") or []:
            item = items.get(int(change.get("id", 0)))
            if item is None:
                answered.append({"id": change.get("id"), "error": {
                    "code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.", "data": {"status": 400}}})
                continue
            if "stock_quantity" in change and not isinstance(change["stock_quantity"], int):
                answered.append({"id": item["id"], "error": {
                    "code": "rest_invalid_param", "message": "stock_quantity is not of type integer.",
                    "data": {"status": 400}}})
                continue
            for key in ("manage_stock", "stock_quantity"):
                if key in change:
                    item[key] = change[key]
            item["stock_status"] = "instock" if (item.get("stock_quantity") or 0) > 0 else "outofstock"
            self.holds.append((stamp, item["sku"], item["stock_quantity"]))
            answered.append(dict(item))
        return Reply(200, {"update": answered}, delay=self.take_slow_write())

    def _orders(self, request: Request) -> Reply:
        orderby = request.query.get("orderby", "date")
        if orderby not in ("date", "id", "include", "title", "slug", "modified"):
            return _error(400, "rest_invalid_param", "Invalid parameter(s): orderby")
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            return _error(400, "rest_invalid_param", "Invalid parameter(s): order")
        gmt = request.query.get("dates_are_gmt") in ("true", "1")
        rows = list(self.orders)
        for name, test in (("modified_after", lambda stamp, at: stamp > at),
                           ("modified_before", lambda stamp, at: stamp < at)):
            if request.query.get(name):
                try:
                    # MySQL DATETIME: whole seconds; a fraction sent is dropped.
                    at = datetime.fromisoformat(request.query[name].replace("Z", "+00:00"))
                except ValueError:
                    return _error(400, "rest_invalid_param", f"Invalid parameter(s): {name}")
                at = at.replace(tzinfo=None, microsecond=0)
                field = "date_modified_gmt" if gmt else "date_modified"
                rows = [o for o in rows if test(datetime.fromisoformat(o[field]), at)]
        key = {"modified": "date_modified_gmt", "date": "date_created_gmt"}.get(orderby)
        rows.sort(key=lambda o: (o[key], o["id"]) if key else o["id"], reverse=order == "desc")
        return self._page(request, rows)
