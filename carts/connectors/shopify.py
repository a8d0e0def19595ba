"""Shopify through the Admin GraphQL API (docs/carts.md, platforms.md).

Quantities are set with `inventorySetQuantities` carrying
`changeFromQuantity` (compare-and-set): the mutation is atomic, so one stale
item refuses the whole call; we report that item as stale and the others as
unapplied, and the controller imports orders, recomputes and sends again.
Throttling is by query cost: a THROTTLED answer (HTTP 200 or 429) carries the
bucket state, from which we compute the wait and block the shared budget."""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from carts.connectors.base import (
    Connector,
    ConnectorError,
    Param,
    PermanentError,
    PushOutcome,
    QuantityUpdate,
    RateSpec,
    RemoteLine,
    RemoteOrder,
    RemoteProduct,
    Throttled,
    TransientError,
    register,
)
from posinv.http import retry_after_seconds

VARIANTS_QUERY = """
query Variants($first: Int!, $after: String, $location: ID!) {
  productVariants(first: $first, after: $after) {
    edges { cursor node { id sku barcode title product { id }
      inventoryItem { id
        inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

LEVELS_QUERY = """
query Levels($ids: [ID!]!, $location: ID!) {
  nodes(ids: $ids) { ... on InventoryItem { id
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } } } }
}"""

SET_MUTATION = """
mutation Set($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { changes { name delta } }
    userErrors { code field message }
  }
}"""

ORDERS_QUERY = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    edges { cursor node { id name createdAt updatedAt cancelledAt displayFinancialStatus
      lineItems(first: 100) { nodes { id sku quantity currentQuantity title variant { barcode } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

PENDING_STATUSES = {"PENDING", "EXPIRED"}
WRITE_COST = 10
REFUNDED_STATUSES = {"REFUNDED", "VOIDED"}


@register
class ShopifyConnector(Connector):
    platform = "shopify"
    label = "Shopify (GraphQL Admin API)"
    params = (
        Param("location_id", "Location GID (gid://shopify/Location/...)"),
        Param("api_version", "API version", required=False, default="2026-04"),
        Param("access_token", "Admin API access token", secret=True),
        Param("webhook_secret", "Webhook signing secret", secret=True, required=False),
    )
    compare_and_set = True
    pushes_orders = True
    batch_size = 100  # the platform takes 250 quantities a call; 100 keeps a call's cost low
    rate = RateSpec(capacity=1000, per_second=50)  # query-cost points (standard plan)

    def endpoint(self) -> str:
        return f"{self.url}/admin/api/{self.values['api_version']}/graphql.json"

    def graphql(self, query: str, variables: dict, *, cost: float, sends: bool = False) -> dict:
        response = self.request(
            "POST",
            self.endpoint(),
            cost=cost,
            sends=sends,
            json={"query": query, "variables": variables},
            headers={"X-Shopify-Access-Token": str(self.values["access_token"])},
        )
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"HTTP {response.status_code}: not JSON", response=response.text[:500]) from exc
        errors = body.get("errors") or []
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
            wait = self._cost_wait(body, cost)
            self.budget.block(wait)
            raise Throttled("THROTTLED by query cost", retry_after=wait, response=str(body)[:1500])
        if response.status_code >= 400:
            raise PermanentError(f"HTTP {response.status_code}", response=response.text[:1500])
        if errors:
            raise PermanentError("GraphQL errors: " + "; ".join(str(e.get("message")) for e in errors),
                                 response=str(errors)[:1500])
        self._pace(body)
        return body.get("data") or {}

    @staticmethod
    def _cost_wait(body: dict, cost: float) -> float:
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        available = float(status.get("currentlyAvailable", 0))
        restore = float(status.get("restoreRate", 50)) or 50
        return max((cost - available) / restore, 0.1)

    def throttle_wait(self, response, cost: float) -> float:
        """THROTTLED may come as a 429 (reports differ): without Retry-After,
        wait for the cost bucket to refill enough for this query."""
        if retry_after_seconds(response.headers.get("Retry-After")) is not None:
            return super().throttle_wait(response, cost)
        try:
            return self._cost_wait(response.json(), cost)
        except ValueError:
            return 1.0

    def _pace(self, body: dict) -> None:
        """Keep clear of THROTTLED: when the shop's cost bucket (reported on
        every answer) cannot pay for another write, hold every worker's budget
        until it has refilled enough."""
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        if not status:
            return
        available = float(status.get("currentlyAvailable", 0))
        restore = float(status.get("restoreRate", 50)) or 50
        reserve = 2 * WRITE_COST
        if available < reserve:
            self.budget.block((reserve - available) / restore)

    @staticmethod
    def _available(level: dict | None) -> int | None:
        if not level:
            return None
        for q in level.get("quantities") or []:
            if q.get("name") == "available":
                return int(q["quantity"])
        return None

    def list_products(self) -> Iterator[RemoteProduct]:
        after = None
        while True:
            data = self.graphql(
                VARIANTS_QUERY, {"first": 100, "after": after, "location": self.values["location_id"]}, cost=102
            )
            page = data["productVariants"]
            for edge in page["edges"]:
                node = edge["node"]
                item = node.get("inventoryItem") or {}
                yield RemoteProduct(
                    ref=item.get("id", ""),
                    sku=node.get("sku") or "",
                    barcode=node.get("barcode") or "",
                    title=node.get("title") or "",
                    product_id=(node.get("product") or {}).get("id", ""),
                    quantity=self._available(item.get("inventoryLevel")),
                )
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def fetch_quantities(self, refs: Iterable[str]) -> dict[str, int]:
        refs = list(refs)
        found: dict[str, int] = {}
        for start in range(0, len(refs), 250):
            chunk = refs[start:start + 250]
            data = self.graphql(LEVELS_QUERY, {"ids": chunk, "location": self.values["location_id"]},
                                cost=len(chunk) + 1)
            for node in data.get("nodes") or []:
                if node and node.get("id"):
                    quantity = self._available(node.get("inventoryLevel"))
                    if quantity is not None:
                        found[node["id"]] = quantity
        return found

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        location = self.values["location_id"]
        payload = {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": "posinv://web-stack",
            "quantities": [
                {"inventoryItemId": u.ref, "locationId": location, "quantity": u.quantity,
                 "changeFromQuantity": u.expected}
                for u in updates
            ],
        }
        data = self.graphql(SET_MUTATION, {"input": payload}, cost=WRITE_COST, sends=True)
        result = data.get("inventorySetQuantities") or {}
        errors = result.get("userErrors") or []
        if not errors:
            return [PushOutcome(ref=u.ref, status="ok") for u in updates]
        # The mutation is all-or-nothing: the erring items get their error,
        # the others were not applied and go again.
        by_index: dict[int, dict] = {}
        for error in errors:
            field = error.get("field") or []
            index = next((int(part) for part in field if str(part).isdigit()), None)
            if index is None:
                raise ConnectorError(f"inventorySetQuantities refused: {error.get('message')}", response=str(errors))
            by_index[index] = error
        outcomes = []
        for index, update in enumerate(updates):
            error = by_index.get(index)
            if error is None:
                outcomes.append(PushOutcome(ref=update.ref, status="unapplied", message="batch refused"))
            elif error.get("code") == "CHANGE_FROM_QUANTITY_STALE":
                outcomes.append(PushOutcome(ref=update.ref, status="stale", message=str(error)))
            else:
                outcomes.append(PushOutcome(ref=update.ref, status="error", message=str(error)))
        return outcomes

    def fetch_orders(self, cursor: dict) -> tuple[list[RemoteOrder], dict]:
        since = cursor.get("updated_at")
        query = f"updated_at:>='{since}'" if since else None
        orders: list[RemoteOrder] = []
        after = None
        newest = since
        while True:
            data = self.graphql(ORDERS_QUERY, {"first": 50, "after": after, "query": query}, cost=52)
            page = data["orders"]
            for edge in page["edges"]:
                order = self._graphql_order(edge["node"])
                orders.append(order)
                stamp = edge["node"]["updatedAt"]
                if newest is None or parse_datetime(stamp) > parse_datetime(newest):
                    newest = stamp
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        # Overlap: the next run asks for >= the newest stamp again; applying an
        # order twice is harmless (keyed by store and order id).
        return orders, ({"updated_at": newest} if newest else dict(cursor))

    @staticmethod
    def _status(financial: str | None, cancelled: bool) -> str:
        if cancelled:
            return "cancelled"
        financial = (financial or "").upper()
        if financial in REFUNDED_STATUSES:
            return "refunded"
        if financial in PENDING_STATUSES:
            return "pending"
        return "open"

    def _graphql_order(self, node: dict) -> RemoteOrder:
        lines = []
        for item in (node.get("lineItems") or {}).get("nodes") or []:
            quantity = Decimal(item["quantity"])
            current = Decimal(item.get("currentQuantity", item["quantity"]))
            lines.append(RemoteLine(
                line_id=item["id"], sku=item.get("sku") or "", quantity=quantity,
                barcode=((item.get("variant") or {}).get("barcode") or ""), title=item.get("title") or "",
                refunded_quantity=quantity - current,
            ))
        return RemoteOrder(
            external_id=node["id"], number=node.get("name") or "",
            status=self._status(node.get("displayFinancialStatus"), bool(node.get("cancelledAt"))),
            remote_status=node.get("displayFinancialStatus") or "",
            placed_at=parse_datetime(node["createdAt"]) if node.get("createdAt") else None,
            updated_at=parse_datetime(node["updatedAt"]) if node.get("updatedAt") else None,
            lines=tuple(lines), raw=node,
        )

    def verify_webhook(self, *, body: bytes, headers) -> bool:
        secret = str(self.values.get("webhook_secret") or "")
        sent = headers.get("X-Shopify-Hmac-Sha256", "")
        if not secret or not sent:
            return False
        digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(digest, sent)

    def parse_webhook(self, *, body: bytes, headers) -> list[RemoteOrder]:
        """An orders/* webhook: one order in the REST shape."""
        import json

        data = json.loads(body)
        lines = []
        for item in data.get("line_items") or []:
            quantity = Decimal(item["quantity"])
            current = Decimal(item.get("current_quantity", item["quantity"]))
            lines.append(RemoteLine(line_id=f"gid://shopify/LineItem/{item['id']}", sku=item.get("sku") or "",
                                    quantity=quantity, title=item.get("title") or "",
                                    refunded_quantity=quantity - current))
        financial = (data.get("financial_status") or "").upper()
        return [RemoteOrder(
            external_id=f"gid://shopify/Order/{data['id']}", number=data.get("name") or "",
            status=self._status(financial, bool(data.get("cancelled_at"))), remote_status=financial,
            placed_at=parse_datetime(data["created_at"]) if data.get("created_at") else None,
            updated_at=parse_datetime(data["updated_at"]) if data.get("updated_at") else None,
            lines=tuple(lines), raw=data,
        )]
