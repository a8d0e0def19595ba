"""A fake BaseLinker-style inventory API, as strict as the platform
(platforms.md): one endpoint taking form fields `method` and `parameters`
(JSON) with header `X-BLToken`.

Rules, each with a test of its own (tests/carts/test_fake_baselinker.py):
- **100 requests per rolling window per token** (60 s; `window_seconds`
  scales it for bounded tests): the 101st request inside any window blocks
  the token, answering `ERROR_BLOCKED_TOKEN` "... token blocked until
  YYYY-MM-DD HH:MM:SS" in BaseLinker's zone (Europe/Warsaw, `zone`), and
  every request is refused until then. No bucket that starts full.
- Pages of 1,000: getInventoryProductsList, getInventoryProductsStock and
  getInventoryProductsPrices.
- updateInventoryProductsStock / updateInventoryProductsPrices: at most 1,000
  products a call (more: the whole call is refused), per-product `warnings`
  for the ones it could not apply (partial failure).
- getOrders: at most 100 orders with `date_confirmed >= date_confirmed_from`,
  oldest first; the client pages by the last `date_confirmed` + 1.
- The JSON `status` says what happened, not the HTTP status: errors come with
  HTTP 200, and `http_status` makes every answer carry another status (a
  proxy in front), so a client that trusts the HTTP status is caught."""
from __future__ import annotations

import json
import math
import time
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from tests.fakes.cartbase import FakeServer, Reply, Request

PAGE = 1000
ORDERS_PAGE = 100
UPDATES = ("updateInventoryProductsStock", "updateInventoryProductsPrices")


class FakeBaseLinker(FakeServer):
    def __init__(self, *, token: str = "bl-token", inventory_id: int = 7, warehouse: str = "bl_1",
                 price_group: str = "11", per_minute: int = 100, window_seconds: float = 60.0,
                 zone: str = "Europe/Warsaw", http_status: int = 200):
        super().__init__()
        self.token, self.inventory_id, self.warehouse, self.price_group = token, inventory_id, warehouse, price_group
        self.per_minute = per_minute
        self.window_seconds = window_seconds
        self.zone = ZoneInfo(zone)
        self.http_status = http_status
        self.products: dict[str, dict] = {}
        self._ordered: list[str] | None = None  # product ids in page order, rebuilt after an addition
        self.orders: list[dict] = []
        self.window: list[float] = []  # wall-clock times of the requests counted in the window
        self.blocked_until: float = 0.0  # wall clock; the message says it in `zone`, to the second
        self.blocked_answers = 0  # requests answered ERROR_BLOCKED_TOKEN (the limit was broken)
        self.update_calls: list[tuple[str, int]] = []
        self.method_calls: list[tuple[str, dict]] = []  # (method, parameters without products)

    # -- data -------------------------------------------------------------------
    def add(self, *, pid: str, sku: str, ean: str = "", stock: int = 0, price: str = "1.00") -> dict:
        with self.lock:
            self.products[pid] = {"id": pid, "sku": sku, "ean": ean, "name": sku, "stock": {self.warehouse: stock},
                                  "prices": {self.price_group: float(Decimal(price))}}
            self._ordered = None
            return self.products[pid]

    def add_many(self, rows) -> None:
        """Many products at once: (pid, sku, stock, price) tuples."""
        with self.lock:
            for pid, sku, stock, price in rows:
                self.products[pid] = {"id": pid, "sku": sku, "ean": "", "name": sku,
                                      "stock": {self.warehouse: stock}, "prices": {self.price_group: price}}
            self._ordered = None

    def add_order(self, *, order_id: int, date_confirmed: int, lines: list[dict] | None = None) -> None:
        with self.lock:
            self.orders.append({"order_id": order_id, "date_confirmed": date_confirmed, "date_add": date_confirmed,
                                "confirmed": True, "products": lines or []})

    def stock(self, pid: str) -> int:
        with self.lock:
            return self.products[pid]["stock"][self.warehouse]

    def pages_read(self, method: str) -> list[int]:
        with self.lock:
            return [int(p.get("page", 1)) for m, p in self.method_calls if m == method]

    def blocked_text(self) -> str:
        """The blocked-until time as the platform writes it: local time in its zone, to the second."""
        return datetime.fromtimestamp(self.blocked_until, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    # -- the endpoint -------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        if request.path != "/connector.php" or request.method != "POST":
            return Reply(404, {"status": "ERROR", "error_code": "ERROR_NOT_FOUND", "error_message": "Not found"})
        if request.headers.get("X-BLToken") != self.token:
            return self._error("ERROR_BAD_TOKEN", "Invalid user token")
        now = time.time()
        if now < self.blocked_until:
            self.blocked_answers += 1
            return self._blocked()
        self.window = [t for t in self.window if now - t < self.window_seconds]
        if len(self.window) >= self.per_minute:
            # The platform blocks the token until its window has room again,
            # written to the second (rounded up, so waiting until then is enough).
            self.blocked_until = math.ceil(self.window[0] + self.window_seconds)
            self.blocked_answers += 1
            return self._blocked()
        self.window.append(now)
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        try:
            parameters = json.loads(form.get("parameters", "{}"))
        except ValueError:
            return self._error("ERROR_PARAMETERS", "parameters is not JSON")
        method = form.get("method")
        self.method_calls.append((method, {k: v for k, v in parameters.items() if k != "products"}))
        if method == "getOrders":
            return self._orders(parameters)
        if parameters.get("inventory_id") not in (self.inventory_id, str(self.inventory_id)):
            return self._error("ERROR_INVENTORY_NOT_FOUND", "Inventory not found")
        if method in ("getInventoryProductsList", "getInventoryProductsStock", "getInventoryProductsPrices"):
            return self._page(method, parameters)
        if method in UPDATES:
            return self._update(method, parameters, now)
        return self._error("ERROR_UNKNOWN_METHOD", f"unknown method {method!r}")

    def _page(self, method: str, parameters: dict) -> Reply:
        try:
            page = int(parameters.get("page", 1))
        except (TypeError, ValueError):
            return self._error("ERROR_PARAMETERS", "page is not a number")
        if self._ordered is None or len(self._ordered) != len(self.products):
            self._ordered = sorted(self.products, key=lambda k: (0, int(k)) if k.isdigit() else (1, k))
        ids = self._ordered
        chunk = ids[(page - 1) * PAGE:page * PAGE] if page >= 1 else []
        if method == "getInventoryProductsStock":
            products = {pid: {"product_id": pid, "stock": dict(self.products[pid]["stock"]), "reservations": {},
                              "variants": {}} for pid in chunk}
        elif method == "getInventoryProductsPrices":
            products = {pid: {"product_id": pid, "prices": dict(self.products[pid]["prices"]), "variants": {}}
                        for pid in chunk}
        else:
            products = {pid: self.products[pid] for pid in chunk}
        return self._reply({"status": "SUCCESS", "products": products})

    def _update(self, method: str, parameters: dict, now: float) -> Reply:
        products = parameters.get("products") or {}
        if len(products) > PAGE:
            return self._error("ERROR_PRODUCTS_LIMIT", f"at most {PAGE} products per call")
        self.update_calls.append((method, len(products)))
        warnings, counter = {}, 0
        key = "stock" if method == "updateInventoryProductsStock" else "prices"
        for pid, values in products.items():
            product = self.products.get(str(pid))
            if product is None:
                warnings[pid] = "Product not found"
                continue
            bad = next((v for v in values.values()
                        if (key == "stock" and (not isinstance(v, int) or v < 0))
                        or (key == "prices" and (not isinstance(v, int | float) or v < 0))), None)
            if bad is not None:
                warnings[pid] = f"invalid {key} {bad!r}"
                continue
            product[key].update(values)
            counter += 1
            if key == "stock":
                self.holds.append((time.monotonic(), product["sku"], values.get(self.warehouse)))
        return self._reply({"status": "SUCCESS", "counter": counter, "warnings": warnings})

    def _orders(self, parameters: dict) -> Reply:
        since = int(parameters.get("date_confirmed_from") or 0)
        found = sorted((o for o in self.orders if o["date_confirmed"] >= since),
                       key=lambda o: (o["date_confirmed"], o["order_id"]))
        return self._reply({"status": "SUCCESS", "orders": found[:ORDERS_PAGE]})

    def _reply(self, body: dict) -> Reply:
        return Reply(self.http_status, body)

    def _error(self, code: str, message: str) -> Reply:
        return self._reply({"status": "ERROR", "error_code": code, "error_message": message})

    def _blocked(self) -> Reply:
        return self._error("ERROR_BLOCKED_TOKEN", f"Query limit exceeded, token blocked until {self.blocked_text()}")
