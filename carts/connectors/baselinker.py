"""A BaseLinker-style inventory API (platforms.md): one endpoint, form fields
`method` and `parameters` (JSON), header `X-BLToken`, 100 requests a minute
per token shared by everything using it, at most 1,000 products per update.
Trust the JSON `status`, not the HTTP status: a blocked token answers
`ERROR_BLOCKED_TOKEN ... blocked until <time>`, and we wait until then.
Refs are the inventory's product ids."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

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
    register,
)

MAX_PRODUCTS = 1000
BLOCKED = re.compile(r"blocked until (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


@register
class BaseLinkerConnector(Connector):
    platform = "baselinker"
    label = "BaseLinker-style inventory API"
    params = (
        Param("inventory_id", "Inventory id"),
        Param("warehouse_id", "Warehouse key (e.g. bl_123)"),
        Param("price_group_id", "Price group id", required=False, default=""),
        Param("token", "API token", secret=True),
    )
    supports_prices = True
    batch_size = MAX_PRODUCTS
    rate = RateSpec(capacity=100, per_second=100 / 60)  # 100 requests a minute per token

    def call(self, method: str, parameters: dict, *, sends: bool = False) -> dict:
        response = self.request("POST", self.url, data={"method": method, "parameters": json.dumps(parameters)},
                                headers={"X-BLToken": str(self.values["token"])}, sends=sends)
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"HTTP {response.status_code}: not JSON", response=response.text[:500]) from exc
        if body.get("status") == "SUCCESS":
            return body
        code, message = body.get("error_code", ""), body.get("error_message", "")
        if code == "ERROR_BLOCKED_TOKEN":
            match = BLOCKED.search(message)
            wait = 60.0
            if match:
                until = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                wait = max((until - datetime.now(UTC)).total_seconds(), 1.0)
            self.budget.block(wait)
            raise Throttled(f"token blocked: {message}", retry_after=wait, response=json.dumps(body))
        raise PermanentError(f"{method}: {code} {message}", response=json.dumps(body))

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
        return {p.ref: p.quantity for p in self.list_products() if p.ref in wanted and p.quantity is not None}

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
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
