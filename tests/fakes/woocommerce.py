"""A fake WooCommerce REST API v3 (platforms.md): Basic auth with consumer
key and secret, products and variations with page/per_page pagination
(X-WP-Total, X-WP-TotalPages, Link rel=next), the batch endpoints (at most
100 items, 413 above; a bad item fails inside a 200), orders filtered by
modified_after, and the shared faults of tests/fakes/cartbase.py (a host's
429 with Retry-After, occasional 5xx)."""
from __future__ import annotations

import base64
import itertools
import math
import re
import time
from datetime import UTC, datetime, timedelta

from tests.fakes.cartbase import FakeServer, Reply, Request

BASE = "/wp-json/wc/v3"
MAX_BATCH = 100


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message, "data": {"status": status}})


class FakeWooCommerce(FakeServer):
    def __init__(self, *, key: str = "ck_test", secret: str = "cs_test"):
        super().__init__()
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

    def place_order(self, *, lines: list[tuple[str, int]], status: str = "processing") -> dict:
        with self.lock:
            now = datetime.now(UTC).replace(microsecond=0)
            oid = next(self._ids)
            items = []
            for sku, quantity in lines:
                item = next(i for i in self._all_items() if i.get("sku") == sku)
                if status in ("processing", "completed", "on-hold"):
                    item["stock_quantity"] -= quantity
                items.append({"id": next(self._ids), "sku": sku, "quantity": quantity, "name": sku})
            order = {"id": oid, "number": str(oid), "status": status, "date_created_gmt": now.isoformat()[:19],
                     "date_modified_gmt": now.isoformat()[:19], "line_items": items}
            self.orders.append(order)
            return order

    def set_order_status(self, order: dict, status: str) -> None:
        with self.lock:
            order["status"] = status
            modified = datetime.fromisoformat(order["date_modified_gmt"]) + timedelta(seconds=1)
            now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
            order["date_modified_gmt"] = max(modified, now).isoformat()[:19]

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
            return _error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        if not 1 <= per_page <= 100:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): per_page")
        if request.query.get("include"):
            wanted = {int(x) for x in request.query["include"].split(",") if x}
            rows = [r for r in rows if r["id"] in wanted]
        total = len(rows)
        pages = max(1, math.ceil(total / per_page))
        headers = {"X-WP-Total": total, "X-WP-TotalPages": pages}
        if page < pages:
            headers["Link"] = f'<{self.url}{request.path}?page={page + 1}&per_page={per_page}>; rel="next"'
        return Reply(200, rows[(page - 1) * per_page:page * per_page], headers)

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
        rows = list(self.orders)
        if request.query.get("modified_after"):
            after = datetime.fromisoformat(request.query["modified_after"].replace("Z", ""))
            rows = [o for o in rows if datetime.fromisoformat(o["date_modified_gmt"]) > after]
        key = "date_modified_gmt" if request.query.get("orderby") == "modified" else "date_created_gmt"
        rows.sort(key=lambda o: (o[key], o["id"]), reverse=request.query.get("order") == "desc")
        return self._page(request, rows)
