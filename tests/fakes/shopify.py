"""A fake Shopify Admin GraphQL API (platforms.md): access-token auth, the
operations posinv uses (productVariants with cursor pagination, nodes for
inventory levels, inventorySetQuantities with compare-and-set, orders with an
updated_at query), query-cost throttling answered THROTTLED (HTTP 200 or
429, configurable) with extensions.cost, and the shared faults of
tests/fakes/cartbase.py. The GraphQL text is not parsed: the operation is
recognised by its root field and reads its variables, as our connector sends."""
from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.fakes.cartbase import FakeServer, Reply, Request

LOCATION = "gid://shopify/Location/1"
MAX_QUANTITIES = 250


@dataclass
class Variant:
    id: int
    sku: str
    barcode: str
    title: str
    product_id: int
    available: int

    @property
    def item_gid(self) -> str:
        return f"gid://shopify/InventoryItem/{self.id}"


@dataclass
class Order:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    financial: str
    cancelled_at: datetime | None
    lines: list[dict] = field(default_factory=list)


class FakeShopify(FakeServer):
    def __init__(self, *, token: str = "shpat_test", version: str = "2026-04", cost_capacity: float = 1000,
                 restore_rate: float = 50, throttle_status: int = 200):
        super().__init__()
        self.token = token
        self.version = version
        self.cost_capacity = cost_capacity
        self.restore_rate = restore_rate
        self.throttle_status = throttle_status
        self._cost_available = cost_capacity
        self._cost_stamp = time.monotonic()
        self.variants: dict[int, Variant] = {}
        self.orders: list[Order] = []
        self._ids = itertools.count(1001)
        self.set_calls = 0
        self.stale_answers = 0
        self.rest_capacity = 40
        self.rest_leak = 2.0

    # -- test helpers ----------------------------------------------------------
    def add_variant(self, *, sku: str, available: int = 0, barcode: str = "", title: str = "") -> Variant:
        with self.lock:
            vid = next(self._ids)
            variant = Variant(id=vid, sku=sku, barcode=barcode, title=title or sku, product_id=vid + 50000,
                              available=available)
            self.variants[vid] = variant
            return variant

    def by_sku(self, sku: str) -> Variant:
        return next(v for v in self.variants.values() if v.sku == sku)

    def available(self, sku: str) -> int:
        with self.lock:
            return self.by_sku(sku).available

    def place_order(self, *, lines: list[tuple[str, int]], financial: str = "PAID") -> Order:
        """A web order: the shop lowers its own stock at once (as Shopify does)."""
        with self.lock:
            now = datetime.now(UTC)
            oid = next(self._ids)
            order = Order(id=oid, name=f"#{oid}", created_at=now, updated_at=now, financial=financial,
                          cancelled_at=None)
            for sku, quantity in lines:
                variant = self.by_sku(sku)
                variant.available -= quantity
                order.lines.append({"id": next(self._ids), "sku": sku, "quantity": quantity,
                                    "current_quantity": quantity, "title": variant.title, "barcode": variant.barcode})
            self.orders.append(order)
            return order

    def cancel_order(self, order: Order) -> None:
        with self.lock:
            order.cancelled_at = datetime.now(UTC)
            order.updated_at = order.cancelled_at + timedelta(milliseconds=1)
            for line in order.lines:
                self.by_sku(line["sku"]).available += line["current_quantity"]

    def order_webhook_body(self, order: Order) -> dict:
        return {"id": order.id, "name": order.name, "financial_status": order.financial.lower(),
                "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
                "created_at": order.created_at.isoformat(), "updated_at": order.updated_at.isoformat(),
                "line_items": [{"id": ln["id"], "sku": ln["sku"], "quantity": ln["quantity"],
                                "current_quantity": ln["current_quantity"], "title": ln["title"]}
                               for ln in order.lines]}

    # -- HTTP ------------------------------------------------------------------
    def skus_named(self, request: Request) -> tuple[str, ...]:
        """Inventory items a GraphQL read (`nodes`) or write (`inventorySetQuantities`) names."""
        if request.method != "POST" or not request.path.endswith("/graphql.json"):
            return ()
        try:
            body = request.json()
        except ValueError:
            return ()
        variables = (body.get("variables") if isinstance(body, dict) else None) or {}
        data = variables.get("input") or {}
        gids = list(variables.get("ids") or [])
        gids += [q.get("inventoryItemId") for q in data.get("quantities") or [] if isinstance(q, dict)]
        found = (self._item(gid) for gid in gids if isinstance(gid, str))
        return tuple(variant.sku for variant in found if variant)

    def handle(self, request: Request) -> Reply:
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return Reply(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                                         "password)"})
        if request.path == f"/admin/api/{self.version}/inventory_levels/set.json" and request.method == "POST":
            return self._rest_set(request)
        if request.path != f"/admin/api/{self.version}/graphql.json" or request.method != "POST":
            return Reply(404, {"errors": "Not Found"})
        body = request.json() or {}
        query, variables = body.get("query", ""), body.get("variables") or {}
        if "inventorySetQuantities" in query:
            cost, op = 10, self._set
        elif "productVariants" in query:
            cost, op = 2 + int(variables.get("first", 50)), self._variants
        elif "nodes(" in query:
            cost, op = 1 + len(variables.get("ids") or []), self._nodes
        elif re.search(r"\borders\(", query):
            cost, op = 2 + int(variables.get("first", 50)), self._orders
        else:
            return Reply(200, {"errors": [{"message": "unsupported operation in the fake"}]})
        now = time.monotonic()
        self._cost_available = min(self.cost_capacity,
                                   self._cost_available + (now - self._cost_stamp) * self.restore_rate)
        self._cost_stamp = now
        throttle = {"maximumAvailable": self.cost_capacity, "currentlyAvailable": int(self._cost_available),
                    "restoreRate": self.restore_rate}
        if cost > self._cost_available:
            return Reply(self.throttle_status, {
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                                                                    "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": None,
                                        "throttleStatus": throttle}}})
        self._cost_available -= cost
        data, delay = op(variables)
        throttle["currentlyAvailable"] = int(self._cost_available)
        return Reply(200, {"data": data, "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": cost,
                                                                 "throttleStatus": throttle}}}, delay=delay)

    def _rest_set(self, request: Request) -> Reply:
        """The legacy REST call: a leaky bucket of `rest_capacity` requests
        leaking `rest_leak` a second per app and store, reported on every
        answer in X-Shopify-Shop-Api-Call-Limit; over it, 429 + Retry-After."""
        now = time.monotonic()
        self._rest_used = max(0.0, getattr(self, "_rest_used", 0.0) - (now - getattr(self, "_rest_stamp", now))
                              * self.rest_leak)
        self._rest_stamp = now
        if self._rest_used + 1 > self.rest_capacity:
            return Reply(429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                                         "resume uninterrupted service."},
                         {"Retry-After": "1.0", "X-Shopify-Shop-Api-Call-Limit": f"{self.rest_capacity}/"
                                                                                  f"{self.rest_capacity}"})
        self._rest_used += 1
        limit = {"X-Shopify-Shop-Api-Call-Limit": f"{math.ceil(self._rest_used)}/{self.rest_capacity}"}
        body = request.json() or {}
        variant = self.variants.get(int(body.get("inventory_item_id", 0) or 0))
        if variant is None or body.get("location_id") != 1:
            return Reply(422, {"errors": {"inventory_item_id": ["is invalid"]}}, limit)
        variant.available = int(body["available"])
        self.holds.append((now, variant.sku, variant.available))
        return Reply(200, {"inventory_level": {"inventory_item_id": variant.id, "location_id": 1,
                                               "available": variant.available}}, limit)

    def _level(self, variant: Variant) -> dict:
        return {"quantities": [{"name": "available", "quantity": variant.available}]}

    def _variants(self, variables: dict):
        ordered = sorted(self.variants.values(), key=lambda v: v.id)
        start = int(variables["after"]) if variables.get("after") else 0
        first = min(int(variables.get("first", 50)), 250)
        page = ordered[start:start + first]
        edges = [{"cursor": str(start + i + 1), "node": {
            "id": f"gid://shopify/ProductVariant/{v.id}", "sku": v.sku, "barcode": v.barcode, "title": v.title,
            "product": {"id": f"gid://shopify/Product/{v.product_id}"},
            "inventoryItem": {"id": v.item_gid, "inventoryLevel": self._level(v)}}} for i, v in enumerate(page)]
        return {"productVariants": {"edges": edges, "pageInfo": {
            "hasNextPage": start + first < len(ordered), "endCursor": str(start + len(page))}}}, 0.0

    def _item(self, gid: str) -> Variant | None:
        match = re.fullmatch(r"gid://shopify/InventoryItem/(\d+)", gid or "")
        return self.variants.get(int(match.group(1))) if match else None

    def _nodes(self, variables: dict):
        nodes = []
        for gid in variables.get("ids") or []:
            variant = self._item(gid)
            nodes.append({"id": gid, "inventoryLevel": self._level(variant)} if variant else None)
        return {"nodes": nodes}, 0.0

    def _set(self, variables: dict):
        self.set_calls += 1
        data = variables.get("input") or {}
        quantities = data.get("quantities") or []
        errors = []
        if data.get("name") != "available":
            errors.append({"code": "INVALID_NAME", "field": ["input", "name"], "message": "name must be available"})
        if len(quantities) > MAX_QUANTITIES:
            errors.append({"code": "TOO_MANY", "field": ["input", "quantities"],
                           "message": f"at most {MAX_QUANTITIES} quantities"})
        for index, q in enumerate(quantities):
            where = ["input", "quantities", str(index)]
            variant = self._item(q.get("inventoryItemId"))
            if variant is None:
                errors.append({"code": "INVALID_INVENTORY_ITEM", "field": where + ["inventoryItemId"],
                               "message": "The specified inventory item could not be found."})
            elif q.get("locationId") != LOCATION:
                errors.append({"code": "INVALID_LOCATION", "field": where + ["locationId"],
                               "message": "The specified location could not be found."})
            elif int(q.get("quantity", 0)) < 0:
                errors.append({"code": "INVALID_QUANTITY_NEGATIVE", "field": where + ["quantity"],
                               "message": "The quantity can't be negative."})
            elif "changeFromQuantity" not in q:
                errors.append({"code": "INVALID", "field": where + ["changeFromQuantity"],
                               "message": "changeFromQuantity is required from 2026-04 (null opts out)."})
            elif q["changeFromQuantity"] is not None and int(q["changeFromQuantity"]) != variant.available:
                self.stale_answers += 1
                errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": where + ["changeFromQuantity"],
                               "message": "The changeFromQuantity does not match the current quantity."})
        if errors:
            return {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": errors}}, 0.0
        changes = []
        stamp = time.monotonic()
        for q in quantities:
            variant = self._item(q["inventoryItemId"])
            changes.append({"name": "available", "delta": int(q["quantity"]) - variant.available})
            variant.available = int(q["quantity"])
            self.holds.append((stamp, variant.sku, variant.available))
        return {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"changes": changes}, "userErrors": []}}, \
            self.take_slow_write()

    def _orders(self, variables: dict):
        since = None
        match = re.search(r"updated_at:>='([^']+)'", variables.get("query") or "")
        if match:
            since = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        found = sorted((o for o in self.orders if since is None or o.updated_at >= since),
                       key=lambda o: (o.updated_at, o.id))
        start = int(variables["after"]) if variables.get("after") else 0
        first = min(int(variables.get("first", 50)), 250)
        page = found[start:start + first]
        edges = [{"cursor": str(start + i + 1), "node": {
            "id": f"gid://shopify/Order/{o.id}", "name": o.name, "createdAt": o.created_at.isoformat(),
            "updatedAt": o.updated_at.isoformat(), "displayFinancialStatus": o.financial,
            "cancelledAt": o.cancelled_at.isoformat() if o.cancelled_at else None,
            "lineItems": {"nodes": [{"id": f"gid://shopify/LineItem/{ln['id']}", "sku": ln["sku"],
                                     "quantity": ln["quantity"], "currentQuantity": ln["current_quantity"],
                                     "title": ln["title"], "variant": {"barcode": ln["barcode"]}}
                                    for ln in o.lines]}}} for i, o in enumerate(page)]
        return {"orders": {"edges": edges, "pageInfo": {"hasNextPage": start + first < len(found),
                                                        "endCursor": str(start + len(page))}}}, 0.0
