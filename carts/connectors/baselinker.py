"""A BaseLinker-style inventory API (platforms.md): one endpoint, form fields
`method` and `parameters` (JSON), header `X-BLToken`, 100 requests in any
rolling minute per token shared by everything using it (a sliding window in
Redis or the database: carts/ratelimit.py), at most 1,000 products per
update, pages of 1,000. Trust the JSON `status`, not the HTTP status. A
blocked token answers `ERROR_BLOCKED_TOKEN ... blocked until <time>`, a local
time in BaseLinker's zone (a Polish service: Europe/Warsaw, the store's
`timezone` parameter), and every worker waits until then. Refs are the
inventory's product ids."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carts.connectors.base import (
    Connector,
    Param,
    PermanentError,
    PriceUpdate,
    PushOutcome,
    QuantityUpdate,
    RateSpec,
    RemoteProduct,
    Throttled,
    TransientError,
    _retry_after,
    describe,
    register,
)

MAX_PRODUCTS = 1000
BLOCKED = re.compile(r"blocked until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
# BaseLinker is a Polish service; its API writes times in Polish local time.
DEFAULT_ZONE = "Europe/Warsaw"


@register
class BaseLinkerConnector(Connector):
    platform = "baselinker"
    label = "BaseLinker-style inventory API"
    params = (
        Param("inventory_id", "Inventory id"),
        Param("warehouse_id", "Warehouse key (e.g. bl_123)"),
        Param("price_group_id", "Price group id", required=False, default=""),
        Param("token", "API token", secret=True),
        Param("timezone", "Zone of the platform's times (blocked until ...)", required=False, default=DEFAULT_ZONE),
    )
    supports_prices = True
    batch_size = MAX_PRODUCTS
    # 100 requests in any rolling minute per token (a window, not a bucket that starts full).
    rate = RateSpec(capacity=100, per_second=100 / 60, window_seconds=60)
    waits_for_budget = True

    def zone(self) -> ZoneInfo:
        name = str(self.values.get("timezone") or DEFAULT_ZONE)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise PermanentError(f"timezone {name!r} is not a known zone (e.g. {DEFAULT_ZONE})") from None

    @classmethod
    def param_problems(cls, *, params: dict) -> list[tuple[str, str]]:
        name = str((params or {}).get("timezone") or DEFAULT_ZONE)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return [("timezone", f"{name!r} is not a known zone (e.g. {DEFAULT_ZONE})")]
        return []

    def blocked_wait(self, message: str, *, now: datetime | None = None) -> float:
        """Seconds until the time a blocked-token message names (local time in
        the platform's zone); a minute when it names none."""
        match = BLOCKED.search(message)
        if not match:
            return 60.0
        until = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.zone())
        return max((until - (now or datetime.now(UTC))).total_seconds(), 1.0)

    def call(self, method: str, parameters: dict, *, sends: bool = False) -> dict:
        """One API call. The JSON `status` says what happened, whatever the
        HTTP status (the platform answers errors with 200, a proxy may answer
        a good body with another status); only an answer that is not the
        platform's JSON falls back to the HTTP status."""
        response = self.request("POST", self.url, data={"method": method, "parameters": json.dumps(parameters)},
                                headers={"X-BLToken": str(self.values["token"])}, sends=sends, raw=True)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in ("SUCCESS", "ERROR"):
            return self._not_platform_json(response)
        if body["status"] == "SUCCESS":
            return body
        code, message = body.get("error_code", ""), body.get("error_message", "")
        if code == "ERROR_BLOCKED_TOKEN":
            wait = self.blocked_wait(message)
            self.budget.block(wait)  # every worker on this token stops until then
            raise Throttled(f"token blocked: {message}", retry_after=wait, response=json.dumps(body))
        raise PermanentError(f"{method}: {code} {message}", response=json.dumps(body))

    def _not_platform_json(self, response):
        status = response.status_code
        if status == 429:
            wait = _retry_after(response)
            self.budget.block(wait)
            raise Throttled(f"429 Too Many Requests; retry after {wait}s", retry_after=wait,
                            response=describe(response))
        if status in (401, 403):
            raise PermanentError(f"HTTP {status}: credentials refused", response=describe(response))
        raise TransientError(f"HTTP {status}: not the platform's JSON", response=describe(response))

    def _pages(self, method: str, start_page: int) -> Iterator[tuple[int, dict, bool]]:
        page = max(int(start_page), 1)
        while True:
            body = self.call(method, {"inventory_id": self.values["inventory_id"], "page": page})
            products = body.get("products") or {}
            last = len(products) < MAX_PRODUCTS
            yield page, products, last
            if last:
                return
            page += 1

    def quantity_pages(self, *, start_page: int = 1) -> Iterator[tuple[int, dict[str, int], bool]]:
        warehouse = str(self.values["warehouse_id"])
        for page, products, last in self._pages("getInventoryProductsStock", start_page):
            figures = {}
            for pid, item in products.items():
                stock = (item.get("stock") or {}).get(warehouse)
                if stock is not None:
                    figures[str(pid)] = int(stock)
            yield page, figures, last

    def price_pages(self, *, start_page: int = 1) -> Iterator[tuple[int, dict[str, Decimal], bool]]:
        group = str(self.values.get("price_group_id") or "")
        if not group:
            raise PermanentError("price_group_id is not set for this store")
        for page, products, last in self._pages("getInventoryProductsPrices", start_page):
            figures = {}
            for pid, item in products.items():
                price = _decimal((item.get("prices") or {}).get(group))
                if price is not None:
                    figures[str(pid)] = price
            yield page, figures, last

    def list_products(self) -> Iterator[RemoteProduct]:
        page = 1
        warehouse = str(self.values["warehouse_id"])
        group = str(self.values.get("price_group_id") or "")
        while True:
            body = self.call("getInventoryProductsList", {"inventory_id": self.values["inventory_id"], "page": page})
            products = body.get("products") or {}
            for pid, item in products.items():
                stock = (item.get("stock") or {}).get(warehouse)
                price = (item.get("prices") or {}).get(group) if group else None
                yield RemoteProduct(ref=str(pid), sku=item.get("sku") or "", barcode=item.get("ean") or "",
                                    title=item.get("name") or "", product_id=str(pid),
                                    quantity=None if stock is None else int(stock),
                                    price=None if price is None else _decimal(price))
            if len(products) < MAX_PRODUCTS:
                return
            page += 1

    def fetch_quantities(self, refs: Iterable[str]) -> dict[str, int]:
        wanted = set(refs)
        found: dict[str, int] = {}
        for _, figures, _ in self.quantity_pages():
            found.update({ref: qty for ref, qty in figures.items() if ref in wanted})
            if len(found) == len(wanted):
                break
        return found

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        warehouse = str(self.values["warehouse_id"])
        return self._update("updateInventoryProductsStock",
                            {u.ref: {warehouse: u.quantity} for u in updates}, [u.ref for u in updates])

    def push_prices(self, updates: list[PriceUpdate]) -> list[PushOutcome]:
        group = str(self.values.get("price_group_id") or "")
        if not group:
            raise PermanentError("price_group_id is not set for this store")
        return self._update("updateInventoryProductsPrices",
                            {u.ref: {group: float(u.price)} for u in updates}, [u.ref for u in updates])

    def _update(self, method: str, products: dict, refs: list[str]) -> list[PushOutcome]:
        outcomes: dict[str, PushOutcome] = {}
        items = list(products.items())
        for start in range(0, len(items), MAX_PRODUCTS):
            chunk = dict(items[start:start + MAX_PRODUCTS])
            body = self.call(method, {"inventory_id": self.values["inventory_id"], "products": chunk}, sends=True)
            warnings = body.get("warnings") or {}
            for ref in chunk:
                if ref in warnings:
                    outcomes[ref] = PushOutcome(ref=ref, status="error", message=str(warnings[ref])[:500])
                else:
                    outcomes[ref] = PushOutcome(ref=ref, status="ok")
        return [outcomes[ref] for ref in refs]


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
