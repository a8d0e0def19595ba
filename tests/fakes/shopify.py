"""A fake Shopify Admin GraphQL API (platforms.md), as strict as the real one
where posinv depends on it:

- access-token auth; API versions in the path (`versions`, an unknown one is 404);
- every GraphQL document is parsed (graphql-core) and its **requested cost**
  computed from the AST by Shopify's documented rules (`query_cost`): scalars
  and enums 0, an object field 1 plus its selection, a connection
  (`first:`/`last:`) 2 + first × (1 + the cost of one node), a list asked by
  `ids:` len(ids) × (1 + the cost of one node), each mutation root field 10;
  `edges`, `node`, `nodes`, `cursor` and `pageInfo` inside a connection are
  what "one node" is made of and cost nothing themselves (so the old orders
  query, 50 orders × 100 line items × variant, costs 10,152 as Shopify says);
- a single query above `max_query_cost` (1,000) is refused outright with
  `MAX_COST_EXCEEDED`, whatever the bucket holds;
- the cost bucket (`cost_capacity`, `restore_rate`): each answer carries
  `extensions.cost {requestedQueryCost, actualQueryCost, throttleStatus}`;
  a query the bucket cannot pay is answered THROTTLED (HTTP 200 or 429:
  `throttle_status`) with no data; `time_scale` runs the bucket's clock faster
  (benches);
- version-dependent fields of `inventorySetQuantities`: from 2026-04 each
  quantity needs `changeFromQuantity` (null opts out; a mismatch is
  `CHANGE_FROM_QUANTITY_STALE`) and the older `compareQuantity` /
  `ignoreCompareQuantity` are unknown; before 2026-04 it is the other way
  round (`compareQuantity` unless `ignoreCompareQuantity: true`; a mismatch is
  `COMPARE_QUANTITY_STALE`). An unknown input field is refused the way
  GraphQL refuses a variable of the wrong shape (top-level `errors`, no data);
- root fields served: productVariants, nodes(ids) on InventoryItem,
  inventorySetQuantities, orders (with a paged `lineItems` connection) and
  order(id) for the line items beyond the first page; anything else is an
  `undefinedField` error, as Shopify answers a field its schema lacks."""
from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
    value_from_ast_untyped,
)

from tests.fakes.cartbase import FakeServer, Reply, Request

LOCATION = "gid://shopify/Location/1"
MAX_QUANTITIES = 250
MAX_QUERY_COST = 1000
MUTATION_FIELD_COST = 10
# The versions the fake serves; changeFromQuantity replaced compareQuantity in 2026-04.
VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
CHANGE_FROM_SINCE = "2026-04"  # the fake's own copy: it must not agree with the connector by construction

CONNECTION_PARTS = {"edges", "node", "nodes", "cursor", "pageInfo"}
QUERY_ROOTS = {"productVariants", "nodes", "orders", "order"}
MUTATION_ROOTS = {"inventorySetQuantities"}


class QueryError(Exception):
    """A document Shopify would refuse before running it: answered as top-level errors."""

    def __init__(self, message: str, **extensions):
        super().__init__(message)
        self.extensions = extensions


def _fields(selection_set: SelectionSetNode | None, fragments: dict) -> list[FieldNode]:
    """The fields of a selection, inline fragments and fragment spreads flattened."""
    found: list[FieldNode] = []
    for selection in (selection_set.selections if selection_set else ()):
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found.extend(_fields(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                raise QueryError(f"Fragment {selection.name.value} was used, but not defined", code="undefinedFragment")
            found.extend(_fields(fragment.selection_set, fragments))
    return found


def _arguments(node: FieldNode, variables: dict) -> dict:
    return {arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in node.arguments or ()}


class _Cost:
    """Shopify's requested query cost of one operation (module docstring)."""

    def __init__(self, fragments: dict, variables: dict):
        self.fragments = fragments
        self.variables = variables

    def selection(self, selection_set) -> int:
        return sum(self.field(f) for f in _fields(selection_set, self.fragments))

    def field(self, node: FieldNode) -> int:
        if node.selection_set is None:
            return 0  # a scalar or an enum
        args = _arguments(node, self.variables)
        size = args.get("first", args.get("last"))
        if size is not None:
            return 2 + int(size) * (1 + self.one_node(node.selection_set))
        if isinstance(args.get("ids"), list):
            return len(args["ids"]) * (1 + self.selection(node.selection_set))
        return 1 + self.selection(node.selection_set)

    def one_node(self, selection_set) -> int:
        """The cost of one node of a connection: what `edges { node }` and
        `nodes` select; the wrappers, cursors and pageInfo cost nothing."""
        total = 0
        for f in _fields(selection_set, self.fragments):
            name = f.name.value
            if name == "edges":
                total += sum(self.selection(part.selection_set) for part in _fields(f.selection_set, self.fragments)
                             if part.name.value == "node")
            elif name == "nodes":
                total += self.selection(f.selection_set)
            elif name not in CONNECTION_PARTS:
                total += self.field(f)
        return total


@dataclass
class Parsed:
    """One GraphQL request, parsed: its operation type, root fields (with
    their arguments resolved), the field nodes by name and its requested cost."""

    operation: OperationType
    roots: list[FieldNode]
    cost: int
    variables: dict
    fragments: dict

    def args(self, node: FieldNode) -> dict:
        return _arguments(node, self.variables)

    def find(self, node: FieldNode, *path: str) -> FieldNode | None:
        """The field reached from `node` by the names in `path` (None if not selected)."""
        for name in path:
            node = next((f for f in _fields(node.selection_set, self.fragments) if f.name.value == name), None)
            if node is None:
                return None
        return node


def query_parse(query: str, variables: dict | None = None) -> Parsed:
    """Parse a GraphQL document and compute its requested cost (raises QueryError)."""
    variables = variables or {}
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise QueryError(exc.message, code="parseError") from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise QueryError("exactly one operation per document", code="operationNotUnique")
    operation = operations[0]
    fragments = {d.name.value: d for d in document.definitions if not isinstance(d, OperationDefinitionNode)}
    cost_of = _Cost(fragments, variables)
    roots = _fields(operation.selection_set, fragments)
    if operation.operation == OperationType.MUTATION:
        cost = MUTATION_FIELD_COST * len(roots)
    else:
        cost = sum(cost_of.field(root) for root in roots)
    return Parsed(operation=operation.operation, roots=roots, cost=cost, variables=variables, fragments=fragments)


def version_has_change_from(version: str) -> bool:
    return version >= CHANGE_FROM_SINCE


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


def _page(items: list, args: dict, *, limit: int = 250) -> tuple[list, int, dict]:
    """A cursor page of `items` (cursors are positions): the page, its start and pageInfo."""
    start = int(args["after"]) if args.get("after") else 0
    first = min(int(args.get("first") or 50), limit)
    page = items[start:start + first]
    return page, start, {"hasNextPage": start + first < len(items), "endCursor": str(start + len(page))}


class FakeShopify(FakeServer):
    def __init__(self, *, token: str = "shpat_test", version: str = "2026-04", versions: tuple[str, ...] = VERSIONS,
                 cost_capacity: float = 1000, restore_rate: float = 50, throttle_status: int = 200,
                 max_query_cost: int = MAX_QUERY_COST, time_scale: float = 1.0):
        super().__init__()
        self.token = token
        self.version = version  # the REST path's version and the tests' default
        self.versions = tuple(versions)
        self.cost_capacity = cost_capacity
        self.restore_rate = restore_rate
        self.throttle_status = throttle_status
        self.max_query_cost = max_query_cost
        self.time_scale = time_scale
        self._cost_available = cost_capacity
        self._cost_stamp = time.monotonic()
        self.variants: dict[int, Variant] = {}
        self.orders: list[Order] = []
        self._ids = itertools.count(1001)
        self.set_calls = 0
        self.stale_answers = 0
        self.throttled_answers = 0
        self.over_cost_answers = 0
        self.points_spent = 0
        self.rest_capacity = 40
        self.rest_leak = 2.0

    # -- test helpers ----------------------------------------------------------
    def add_variant(self, *, sku: str, available: int = 0, barcode: str = "", title: str = "") -> Variant:
        with self.lock:
            vid = next(self._ids)
            variant = Variant(id=vid, sku=sku, barcode=barcode, title=title or sku, product_id=vid + 50000,
                              available=available)
            self.variants[vid] = variant
            self._by_sku = None
            return variant

    def by_sku(self, sku: str) -> Variant:
        if getattr(self, "_by_sku", None) is None or len(self._by_sku) != len(self.variants):
            self._by_sku = {v.sku: v for v in self.variants.values()}
        return self._by_sku[sku]

    def available(self, sku: str) -> int:
        with self.lock:
            return self.by_sku(sku).available

    def set_available(self, sku: str, quantity: int) -> None:
        """A merchant edits the quantity in the Shopify admin."""
        with self.lock:
            self.by_sku(sku).available = quantity

    def drain_bucket(self, to: float = 0) -> None:
        """Another app (or a burst of ours) has spent the cost bucket."""
        with self.lock:
            self._refill()
            self._cost_available = to

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

    def _refill(self) -> None:
        now = time.monotonic()
        self._cost_available = min(self.cost_capacity, self._cost_available
                                   + (now - self._cost_stamp) * self.restore_rate * self.time_scale)
        self._cost_stamp = now

    def _throttle_status(self) -> dict:
        return {"maximumAvailable": self.cost_capacity, "currentlyAvailable": int(self._cost_available),
                "restoreRate": self.restore_rate}

    def handle(self, request: Request) -> Reply:
        if request.headers.get("X-Shopify-Access-Token") != self.token:
            return Reply(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                                         "password)"})
        if request.path == f"/admin/api/{self.version}/inventory_levels/set.json" and request.method == "POST":
            return self._rest_set(request)
        match = re.fullmatch(r"/admin/api/([0-9]{4}-[0-9]{2})/graphql\.json", request.path)
        if not match or match.group(1) not in self.versions or request.method != "POST":
            return Reply(404, {"errors": "Not Found"})
        version = match.group(1)
        try:
            body = request.json() or {}
        except ValueError:
            return Reply(400, {"errors": "Bad Request: the body is not JSON"})
        variables = body.get("variables") or {}
        try:
            parsed = query_parse(body.get("query") or "", variables)
        except QueryError as exc:
            return Reply(200, {"errors": [{"message": str(exc), "extensions": exc.extensions}]})
        if parsed.cost > self.max_query_cost:
            # Refused before execution, whatever the bucket holds.
            self.over_cost_answers += 1
            return Reply(200, {"errors": [{
                "message": f"Query cost is {parsed.cost}, which exceeds the single query max cost limit "
                           f"({self.max_query_cost}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
                           "for more information on how the\ncost of a query is calculated.\n\nTo query larger "
                           "amounts of data with fewer limits, bulk operations should be used instead.",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": parsed.cost, "maxCost": self.max_query_cost,
                               "documentation": "https://shopify.dev/api/usage/rate-limits"}}]})
        roots = {root.name.value for root in parsed.roots}
        allowed = MUTATION_ROOTS if parsed.operation == OperationType.MUTATION else QUERY_ROOTS
        unknown = sorted(roots - allowed)
        if unknown or not roots:
            kind = "Mutation" if parsed.operation == OperationType.MUTATION else "QueryRoot"
            return Reply(200, {"errors": [{"message": f"Field '{name}' doesn't exist on type '{kind}'",
                                           "extensions": {"code": "undefinedField", "typeName": kind,
                                                          "fieldName": name}} for name in unknown or ["(none)"]]})
        if parsed.operation == OperationType.MUTATION:
            problems = self._input_problems(version, variables.get("input") or {})
            if problems:
                return Reply(200, {"errors": [{
                    "message": "Variable $input of type InventorySetQuantitiesInput! was provided invalid value "
                               + ", ".join(f"for {'.'.join(map(str, p['path']))} ({p['explanation']})"
                                           for p in problems),
                    "extensions": {"value": variables.get("input"), "problems": problems}}]})
        self._refill()
        if parsed.cost > self._cost_available:
            self.throttled_answers += 1
            return Reply(self.throttle_status, {
                "errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": {"cost": {"requestedQueryCost": parsed.cost, "actualQueryCost": None,
                                        "throttleStatus": self._throttle_status()}}})
        self._cost_available -= parsed.cost
        self.points_spent += parsed.cost
        data: dict = {}
        delay = 0.0
        for root in parsed.roots:
            name = root.name.value
            alias = root.alias.value if root.alias else name
            value, wait = getattr(self, f"_op_{name}")(parsed, root, version)
            data[alias] = value
            delay = max(delay, wait)
        return Reply(200, {"data": data, "extensions": {"cost": {
            "requestedQueryCost": parsed.cost, "actualQueryCost": parsed.cost,
            "throttleStatus": self._throttle_status()}}}, delay=delay)

    @staticmethod
    def _input_problems(version: str, data: dict) -> list[dict]:
        """Input fields the version's schema does not define (or lacks)."""
        new = version_has_change_from(version)
        problems = []
        if new and "ignoreCompareQuantity" in data:
            problems.append({"path": ["ignoreCompareQuantity"],
                             "explanation": "Field is not defined on InventorySetQuantitiesInput"})
        for index, q in enumerate(data.get("quantities") or []):
            if not isinstance(q, dict):
                continue
            gone = "compareQuantity" if new else "changeFromQuantity"
            if gone in q:
                problems.append({"path": ["quantities", index, gone],
                                 "explanation": "Field is not defined on InventoryQuantityInput"})
        return problems

    # -- operations: each builds the full answer, then keeps what was selected --
    def _project(self, parsed: Parsed, value, selection_set):
        """Only the selected fields (under their aliases), as GraphQL answers."""
        if selection_set is None or value is None:
            return value
        if isinstance(value, list):
            return [self._project(parsed, item, selection_set) for item in value]
        out = {}
        for f in _fields(selection_set, parsed.fragments):
            name = f.name.value
            out[f.alias.value if f.alias else name] = self._project(parsed, value.get(name), f.selection_set)
        return out

    def _level(self, variant: Variant) -> dict:
        return {"quantities": [{"name": "available", "quantity": variant.available}]}

    def _item(self, gid: str) -> Variant | None:
        match = re.fullmatch(r"gid://shopify/InventoryItem/(\d+)", gid or "")
        return self.variants.get(int(match.group(1))) if match else None

    def _op_productVariants(self, parsed: Parsed, root: FieldNode, version: str):
        ordered = sorted(self.variants.values(), key=lambda v: v.id)
        page, start, info = _page(ordered, parsed.args(root))
        nodes = [{"id": f"gid://shopify/ProductVariant/{v.id}", "sku": v.sku, "barcode": v.barcode,
                  "title": v.title, "product": {"id": f"gid://shopify/Product/{v.product_id}"},
                  "inventoryItem": {"id": v.item_gid, "inventoryLevel": self._level(v)}} for v in page]
        value = {"nodes": nodes, "edges": [{"cursor": str(start + i + 1), "node": n} for i, n in enumerate(nodes)],
                 "pageInfo": info}
        return self._project(parsed, value, root.selection_set), 0.0

    def _op_nodes(self, parsed: Parsed, root: FieldNode, version: str):
        nodes = []
        for gid in parsed.args(root).get("ids") or []:
            variant = self._item(gid)
            nodes.append({"id": gid, "inventoryLevel": self._level(variant)} if variant else None)
        return self._project(parsed, nodes, root.selection_set), 0.0

    def _line_items(self, parsed: Parsed, order: Order, node: FieldNode | None) -> dict:
        lines = [{"id": f"gid://shopify/LineItem/{ln['id']}", "sku": ln["sku"], "quantity": ln["quantity"],
                  "currentQuantity": ln["current_quantity"], "title": ln["title"],
                  "variant": {"barcode": ln["barcode"]}} for ln in order.lines]
        page, start, info = _page(lines, parsed.args(node) if node is not None else {})
        return {"nodes": page, "edges": [{"cursor": str(start + i + 1), "node": n} for i, n in enumerate(page)],
                "pageInfo": info}

    def _order_value(self, parsed: Parsed, order: Order, lines_field: FieldNode | None) -> dict:
        return {"id": f"gid://shopify/Order/{order.id}", "name": order.name,
                "createdAt": order.created_at.isoformat(), "updatedAt": order.updated_at.isoformat(),
                "displayFinancialStatus": order.financial,
                "cancelledAt": order.cancelled_at.isoformat() if order.cancelled_at else None,
                "lineItems": self._line_items(parsed, order, lines_field)}

    def _op_orders(self, parsed: Parsed, root: FieldNode, version: str):
        args = parsed.args(root)
        since = None
        match = re.search(r"updated_at:>='([^']+)'", args.get("query") or "")
        if match:
            since = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        found = sorted((o for o in self.orders if since is None or o.updated_at >= since),
                       key=lambda o: (o.updated_at, o.id))
        page, start, info = _page(found, args)
        lines_field = parsed.find(root, "edges", "node", "lineItems") or parsed.find(root, "nodes", "lineItems")
        nodes = [self._order_value(parsed, o, lines_field) for o in page]
        value = {"nodes": nodes, "edges": [{"cursor": str(start + i + 1), "node": n} for i, n in enumerate(nodes)],
                 "pageInfo": info}
        return self._project(parsed, value, root.selection_set), 0.0

    def _op_order(self, parsed: Parsed, root: FieldNode, version: str):
        match = re.fullmatch(r"gid://shopify/Order/(\d+)", str(parsed.args(root).get("id") or ""))
        order = next((o for o in self.orders if match and o.id == int(match.group(1))), None)
        if order is None:
            return None, 0.0
        value = self._order_value(parsed, order, parsed.find(root, "lineItems"))
        return self._project(parsed, value, root.selection_set), 0.0

    def _op_inventorySetQuantities(self, parsed: Parsed, root: FieldNode, version: str):
        self.set_calls += 1
        data = parsed.variables.get("input") or parsed.args(root).get("input") or {}
        quantities = data.get("quantities") or []
        new = version_has_change_from(version)
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
            elif new and "changeFromQuantity" not in q:
                errors.append({"code": "INVALID", "field": where + ["changeFromQuantity"],
                               "message": "changeFromQuantity is required from 2026-04 (null opts out)."})
            elif new and q["changeFromQuantity"] is not None and int(q["changeFromQuantity"]) != variant.available:
                self.stale_answers += 1
                errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": where + ["changeFromQuantity"],
                               "message": "The changeFromQuantity does not match the current quantity."})
            elif not new and not data.get("ignoreCompareQuantity") and q.get("compareQuantity") is None:
                errors.append({"code": "COMPARE_QUANTITY_REQUIRED", "field": where + ["compareQuantity"],
                               "message": "compareQuantity is required unless ignoreCompareQuantity is true."})
            elif not new and not data.get("ignoreCompareQuantity") and int(q["compareQuantity"]) != variant.available:
                self.stale_answers += 1
                errors.append({"code": "COMPARE_QUANTITY_STALE", "field": where + ["compareQuantity"],
                               "message": "The compareQuantity argument no longer matches the persisted quantity."})
        if errors:
            value = {"inventoryAdjustmentGroup": None, "userErrors": errors}
            return self._project(parsed, value, root.selection_set), 0.0
        changes = []
        stamp = time.monotonic()
        for q in quantities:
            variant = self._item(q["inventoryItemId"])
            changes.append({"name": "available", "delta": int(q["quantity"]) - variant.available})
            variant.available = int(q["quantity"])
            self.holds.append((stamp, variant.sku, variant.available))
        value = {"inventoryAdjustmentGroup": {"changes": changes}, "userErrors": []}
        return self._project(parsed, value, root.selection_set), self.take_slow_write()

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
