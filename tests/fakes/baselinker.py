"""A fake BaseLinker-style inventory API (platforms.md): one endpoint taking
form fields `method` and `parameters` (JSON) with header `X-BLToken`; 100
requests a minute per token (configurable), over which the token is blocked
until a time given in the message; getInventoryProductsList in pages of
1,000; updateInventoryProductsStock / updateInventoryProductsPrices with at
most 1,000 products, answering warnings per product id (partial failure).
Errors come with HTTP 200 and `status: ERROR`, as the platform does."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs

from tests.fakes.cartbase import FakeServer, Reply, Request

PAGE = 1000


class FakeBaseLinker(FakeServer):
    def __init__(self, *, token: str = "bl-token", inventory_id: int = 7, warehouse: str = "bl_1",
                 price_group: str = "11", per_minute: int = 100):
        super().__init__()
        self.token, self.inventory_id, self.warehouse, self.price_group = token, inventory_id, warehouse, price_group
        self.per_minute = per_minute
        self.products: dict[str, dict] = {}
        self.window: list[float] = []
        self.blocked_until: datetime | None = None
        self.update_calls: list[tuple[str, int]] = []

    def add(self, *, pid: str, sku: str, ean: str = "", stock: int = 0, price: str = "1.00") -> dict:
        with self.lock:
            self.products[pid] = {"id": pid, "sku": sku, "ean": ean, "name": sku, "stock": {self.warehouse: stock},
                                  "prices": {self.price_group: float(Decimal(price))}}
            return self.products[pid]

    def stock(self, pid: str) -> int:
        with self.lock:
            return self.products[pid]["stock"][self.warehouse]

    def handle(self, request: Request) -> Reply:
        if request.path != "/connector.php" or request.method != "POST":
            return Reply(404, {"status": "ERROR", "error_code": "ERROR_NOT_FOUND", "error_message": "Not found"})
        now = datetime.now(UTC)
        if request.headers.get("X-BLToken") != self.token:
            return _error("ERROR_BAD_TOKEN", "Invalid user token")
        if self.blocked_until and now < self.blocked_until:
            return _blocked(self.blocked_until)
        stamp = time.monotonic()
        self.window = [t for t in self.window if stamp - t < 60] + [stamp]
        if len(self.window) > self.per_minute:
            self.blocked_until = now + timedelta(seconds=2)
            return _blocked(self.blocked_until)
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        try:
            parameters = json.loads(form.get("parameters", "{}"))
        except ValueError:
            return _error("ERROR_PARAMETERS", "parameters is not JSON")
        method = form.get("method")
        if parameters.get("inventory_id") not in (self.inventory_id, str(self.inventory_id)):
            return _error("ERROR_INVENTORY_NOT_FOUND", "Inventory not found")
        if method == "getInventoryProductsList":
            page = int(parameters.get("page", 1))
            ids = sorted(self.products, key=lambda k: int(k) if k.isdigit() else k)
            chunk = ids[(page - 1) * PAGE:page * PAGE]
            return Reply(200, {"status": "SUCCESS", "products": {pid: self.products[pid] for pid in chunk}})
        if method in ("updateInventoryProductsStock", "updateInventoryProductsPrices"):
            products = parameters.get("products") or {}
            if len(products) > PAGE:
                return _error("ERROR_PRODUCTS_LIMIT", f"at most {PAGE} products per call")
            self.update_calls.append((method, len(products)))
            warnings, counter = {}, 0
            for pid, values in products.items():
                product = self.products.get(str(pid))
                if product is None:
                    warnings[pid] = "Product not found"
                    continue
                key = "stock" if method == "updateInventoryProductsStock" else "prices"
                for name, value in values.items():
                    if key == "stock" and (not isinstance(value, int) or value < 0):
                        warnings[pid] = f"invalid stock {value!r}"
                        break
                    product[key][name] = value
                else:
                    counter += 1
                    if key == "stock":
                        self.holds.append((stamp, product["sku"], values.get(self.warehouse)))
            return Reply(200, {"status": "SUCCESS", "counter": counter, "warnings": warnings})
        return _error("ERROR_UNKNOWN_METHOD", f"unknown method {method!r}")


def _error(code: str, message: str) -> Reply:
    return Reply(200, {"status": "ERROR", "error_code": code, "error_message": message})


def _blocked(until: datetime) -> Reply:
    return _error("ERROR_BLOCKED_TOKEN",
                  f"Query limit exceeded, token blocked until {until.strftime('%Y-%m-%d %H:%M:%S')}")
