"""Shopify through the Admin GraphQL API (docs/carts.md, platforms.md).

Quantities are set with `inventorySetQuantities` carrying
`changeFromQuantity` (compare-and-set): the mutation is atomic, so one stale
item refuses the whole call; we report that item as stale and the others as
unapplied, and the controller imports orders, recomputes and sends again.
Throttling is by query cost: a THROTTLED answer (HTTP 200 or 429) carries the
bucket state, from which we compute the wait and block the shared budget.
Every query is sized by Shopify's documented cost rules to stay within the
single-query maximum (1,000 points); bulk reads pace themselves by the
bucket's reported state, while a sweep's calls raise Throttled so the sweep
gives its worker back. The API version is the store's choice among
SHOPIFY_API_VERSIONS, and picks the mutation's input shape."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from carts.connectors.base import (
    Connector,
    ConnectorError,
    OrdersPage,
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
from carts.connectors.shopify_versions import SHOPIFY_API_VERSIONS, SHOPIFY_DEFAULT_VERSION, uses_change_from
from posinv.http import retry_after_seconds

# Requested query cost by Shopify's documented rules (platforms.md): scalars
# and enums 0, an object 1 + its selection, a connection 2 + first × (1 + one
# node), a list by ids len × (1 + one node), a mutation root field 10. A
# single query above MAX_QUERY_COST is refused outright (MAX_COST_EXCEEDED),
# so every query below is sized from these formulas, and nested connections
# are paged (an order's line items beyond the first page: ORDER_LINES_QUERY).
MAX_QUERY_COST = 1000
WRITE_COST = 10

# One variant: product 1 + inventoryItem (1 + inventoryLevel (1 + quantities 1)) = 4.
VARIANT_NODE_COST = 4
VARIANTS_PAGE = 150


def variants_cost(first: int) -> int:
    return 2 + first * (1 + VARIANT_NODE_COST)


VARIANTS_QUERY = """
query Variants($first: Int!, $after: String, $location: ID!) {
  productVariants(first: $first, after: $after) {
    edges { cursor node { id sku barcode title product { id }
      inventoryItem { id
        inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

# One inventory item: inventoryLevel 1 + quantities 1 = 2.
LEVEL_NODE_COST = 2
LEVELS_CHUNK = 250


def levels_cost(count: int) -> int:
    return count * (1 + LEVEL_NODE_COST)


LEVELS_QUERY = """
query Levels($ids: [ID!]!, $location: ID!) {
  nodes(ids: $ids) { ... on InventoryItem { id
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } } } }
}"""

# From 2026-04 each quantity carries changeFromQuantity; before, compareQuantity
# (or ignoreCompareQuantity on the input). Same document, different input shape.
SET_MUTATION = """
mutation Set($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { changes { name delta } }
    userErrors { code field message }
  }
}"""
STALE_CODES = {"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"}

# One line item: variant 1 → one line 2; a page of LINES_PAGE lines is
# 2 + LINES_PAGE × 2; one order 1 + that; ORDERS_PAGE orders 2 + ORDERS_PAGE × (1 + that).
# Pages are kept small: the whole requested cost must be in the bucket
# before a query runs, so a 991-point page would hold an import (or the
# import after a stale answer) for up to 20 s at 50 points/s although a
# typical order has a few lines. The cost per order is the same either way.
LINE_NODE_COST = 1
LINES_PAGE = 10
ORDERS_PAGE = 10
ORDER_LINES_PAGE = 250


def lines_cost(first: int) -> int:
    return 2 + first * (1 + LINE_NODE_COST)


def orders_cost(first: int, lines: int = LINES_PAGE) -> int:
    return 2 + first * (1 + lines_cost(lines))


ORDER_LINES_COST = 1 + lines_cost(ORDER_LINES_PAGE)  # 503

LINE_FIELDS = "id sku quantity currentQuantity title variant { barcode }"
ORDERS_QUERY = f"""
query Orders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    edges {{ cursor node {{ id name createdAt updatedAt cancelledAt displayFinancialStatus
      lineItems(first: $lines) {{ nodes {{ {LINE_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

ORDER_LINES_QUERY = f"""
query OrderLines($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    lineItems(first: $first, after: $after) {{ nodes {{ {LINE_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }}
  }}
}}"""

assert max(variants_cost(VARIANTS_PAGE), levels_cost(LEVELS_CHUNK), orders_cost(ORDERS_PAGE),
           ORDER_LINES_COST) <= MAX_QUERY_COST

class QueryTooCostly(PermanentError):
    """The query costs more than the shop's whole bucket holds: waiting cannot help."""


PENDING_STATUSES = {"PENDING", "EXPIRED"}
REFUNDED_STATUSES = {"REFUNDED", "VOIDED"}
# A bulk read waits for the cost bucket at most this long in all before it gives up.
MAX_PACED_WAIT = 600.0


@register
class ShopifyConnector(Connector):
    platform = "shopify"
    label = "Shopify (GraphQL Admin API)"
    params = (
        Param("location_id", "Location GID (gid://shopify/Location/...)"),
        Param("access_token", "Admin API access token", secret=True),
        Param("webhook_secret", "Webhook signing secret", secret=True, required=False),
    )
    api_versions = SHOPIFY_API_VERSIONS
    compare_and_set = True
    pushes_orders = True
    # A mutation costs 10 points however many quantities it carries, and the
    # platform takes 250 a call: full batches are the cheapest.
    batch_size = 250
    rate = RateSpec(capacity=1000, per_second=50)  # query-cost points; adjusted to the shop's throttleStatus

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Bulk reads (listing, Get QOH, order import) wait for the cost bucket
        # in place; the stack sweep turns this off and gives its worker back
        # instead (carts/services/stack.py).
        self.wait_for_bucket = True
        self.slept = 0.0
        self._bucket: dict = {}
        # (query, page) -> the GraphQL end cursor after that page (fetch_orders_page).
        self._order_pages: dict[tuple[str | None, int], str] = {}

    @property
    def version(self) -> str:
        return str(self.values.get("api_version") or SHOPIFY_DEFAULT_VERSION)

    def endpoint(self) -> str:
        if self.version not in SHOPIFY_API_VERSIONS:
            raise PermanentError(f"Shopify API version {self.version} is not supported; choose one of "
                                 f"{', '.join(SHOPIFY_API_VERSIONS)} (docs/carts.md)")
        return f"{self.url}/admin/api/{self.version}/graphql.json"

    def graphql(self, query: str, variables: dict, *, cost: float, sends: bool = False) -> dict:
        """One GraphQL call. A read waits for the cost bucket (THROTTLED, or
        our shared budget spent) when `wait_for_bucket` is set, pacing itself
        by the bucket's reported state; a write never waits here."""
        waited = 0.0
        while True:
            if self.wait_for_bucket and not sends:
                wait = self._refill_wait(cost)
                if self.max_single_wait is not None and wait > self.max_single_wait:
                    raise Throttled(f"the cost bucket needs {wait:.1f} s for a query of {cost:g} points",
                                    retry_after=wait, own_budget=True)
                if wait > 0:
                    waited += self._sleep(wait)
            try:
                return self._graphql_once(query, variables, cost=cost, sends=sends)
            except Throttled as exc:
                if cost > self.query_limit():
                    raise QueryTooCostly(f"a query of {cost:g} points cannot run: the shop's bucket holds "
                                         f"{self.query_limit():g}", response=exc.response) from None
                if sends or not self.wait_for_bucket or waited >= MAX_PACED_WAIT:
                    raise
                if self.max_single_wait is not None and exc.retry_after > self.max_single_wait:
                    raise
                waited += self._sleep(exc.retry_after)

    def query_limit(self) -> float:
        """The most one query may cost: 1,000, or the shop's whole bucket if smaller."""
        shared = float(getattr(self.budget, "capacity", MAX_QUERY_COST))  # sized by any worker's last answer
        return min(float(MAX_QUERY_COST), float(self._bucket.get("maximumAvailable") or MAX_QUERY_COST), shared)

    def fitting(self, wanted: int, cost_of) -> int:
        """The largest page size up to `wanted` whose query fits `query_limit`."""
        size = wanted
        while size > 1 and cost_of(size) > self.query_limit():
            size -= max(1, size // 10)
        return size

    def paged(self, query: str, variables: dict, *, size_name: str, wanted: int, cost_of) -> dict:
        """A read whose page size shrinks to the shop's bucket when that holds
        less than the page costs (learnt from the first answer)."""
        while True:
            size = self.fitting(wanted, cost_of)
            try:
                return self.graphql(query, {**variables, size_name: size}, cost=cost_of(size))
            except QueryTooCostly:
                if self.fitting(wanted, cost_of) == size:
                    raise

    def _sleep(self, seconds: float) -> float:
        seconds = min(max(seconds, 0.01), 60.0)
        time.sleep(seconds)
        self.slept += seconds
        return seconds

    def _refill_wait(self, cost: float) -> float:
        """From the last answer's throttleStatus: how long until the bucket holds `cost`."""
        status = self._bucket
        if not status:
            return 0.0
        elapsed = time.monotonic() - status["_seen"]
        restore = float(status.get("restoreRate") or 50)
        available = float(status.get("currentlyAvailable", 0)) + elapsed * restore
        return max((cost - available) / restore, 0.0)

    def _graphql_once(self, query: str, variables: dict, *, cost: float, sends: bool) -> dict:
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
        self._observe(body)
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

    def _observe(self, body: dict) -> None:
        """Keep the shop's bucket state, and size the shared budget to it:
        buckets differ by plan (1,000 restoring 50/s, or larger)."""
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        if not status:
            return
        self._bucket = {**status, "_seen": time.monotonic()}
        capacity, restore = status.get("maximumAvailable"), status.get("restoreRate")
        if capacity and restore and hasattr(self.budget, "capacity"):
            self.budget.capacity, self.budget.per_second = float(capacity), float(restore)

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
            body = response.json()
        except ValueError:
            return 1.0
        self._observe(body)
        return self._cost_wait(body, cost)

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
        """Every variant with its inventory item and available quantity, a
        page at a time within the single-query maximum, paced by the bucket."""
        after = None
        while True:
            data = self.paged(VARIANTS_QUERY, {"after": after, "location": self.values["location_id"]},
                              size_name="first", wanted=VARIANTS_PAGE, cost_of=variants_cost)
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
        start = 0
        while start < len(refs):
            chunk = refs[start:start + self.fitting(LEVELS_CHUNK, levels_cost)]
            try:
                data = self.graphql(LEVELS_QUERY, {"ids": chunk, "location": self.values["location_id"]},
                                    cost=levels_cost(len(chunk)))
            except QueryTooCostly:
                if self.fitting(LEVELS_CHUNK, levels_cost) >= len(chunk):
                    raise
                continue  # the bucket is smaller than the chunk: again, in smaller chunks
            start += len(chunk)
            for node in data.get("nodes") or []:
                if node and node.get("id"):
                    quantity = self._available(node.get("inventoryLevel"))
                    if quantity is not None:
                        found[node["id"]] = quantity
        return found

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        """Absolute quantities with compare-and-set in the chosen version's
        shape: changeFromQuantity per item from 2026-04 (null opts out),
        compareQuantity before (items without a base go in a second call
        with ignoreCompareQuantity, which only exists for the whole input)."""
        if uses_change_from(self.version):
            return self._push(updates, {"changeFromQuantity": lambda u: u.expected})
        compared = [u for u in updates if u.expected is not None]
        blind = [u for u in updates if u.expected is None]
        outcomes = {}
        if compared:
            outcomes.update(zip([u.ref for u in compared],
                                self._push(compared, {"compareQuantity": lambda u: u.expected}), strict=True))
        if blind:
            outcomes.update(zip([u.ref for u in blind], self._push(blind, {}, ignore_compare=True), strict=True))
        return [outcomes[u.ref] for u in updates]

    def _push(self, updates: list[QuantityUpdate], extra: dict, *, ignore_compare: bool = False) -> list[PushOutcome]:
        location = self.values["location_id"]
        payload = {
            "name": "available",
            "reason": "correction",
            "referenceDocumentUri": "posinv://web-stack",
            "quantities": [
                {"inventoryItemId": u.ref, "locationId": location, "quantity": u.quantity,
                 **{name: value(u) for name, value in extra.items()}}
                for u in updates
            ],
        }
        if ignore_compare:
            payload["ignoreCompareQuantity"] = True
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
            elif error.get("code") in STALE_CODES:
                outcomes.append(PushOutcome(ref=update.ref, status="stale", message=str(error)))
            else:
                outcomes.append(PushOutcome(ref=update.ref, status="error", message=str(error)))
        return outcomes

    def fetch_orders_page(self, *, since: datetime | None, page: int) -> OrdersPage:
        """Page `page` of the orders updated at or after `since`, by update
        time (the shared cursor, carts/services/order_cursor.py): ORDERS_PAGE
        orders with their first LINES_PAGE line items (within the single-query
        maximum); an order with more lines has the rest paged by
        ORDER_LINES_QUERY. Shopify pages by GraphQL cursor, so page n follows
        the end cursor page n - 1 of the same query left."""
        query = f"updated_at:>='{since.astimezone(UTC).isoformat()}'" if since is not None else None
        after = self._order_pages.get((query, page - 1)) if page > 1 else None
        if page > 1 and after is None:
            raise TransientError(f"orders page {page} asked before page {page - 1} of the same query")
        data = self.paged(ORDERS_QUERY, {"after": after, "query": query, "lines": LINES_PAGE},
                          size_name="first", wanted=ORDERS_PAGE, cost_of=orders_cost)
        found = data["orders"]
        orders = []
        for edge in found["edges"]:
            node = edge["node"]
            lines = list(node["lineItems"]["nodes"])
            info = node["lineItems"]["pageInfo"]
            while info["hasNextPage"]:
                more = self.paged(ORDER_LINES_QUERY, {"id": node["id"], "after": info["endCursor"]},
                                  size_name="first", wanted=ORDER_LINES_PAGE,
                                  cost_of=lambda n: 1 + lines_cost(n))
                items = (more.get("order") or {}).get("lineItems")
                if not items:
                    raise TransientError(f"order {node['id']} vanished while its line items were read")
                lines.extend(items["nodes"])
                info = items["pageInfo"]
            orders.append(self._graphql_order(node, lines))
        more = bool(found["pageInfo"]["hasNextPage"])
        if more:
            self._order_pages[(query, page)] = found["pageInfo"]["endCursor"]
        return OrdersPage(orders=tuple(orders), more=more)

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

    def _graphql_order(self, node: dict, items: list[dict]) -> RemoteOrder:
        lines = []
        for item in items:
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
