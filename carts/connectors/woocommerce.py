"""WooCommerce REST API v3 (platforms.md).

Products are addressed as `p:<id>` (simple) or `v:<parent>:<id>`
(variation). Quantities go out through the batch endpoints, at most 100 items
a call (more is 413); a failed item comes back inside a 200 with its error.
Woo has no rate limit of its own; hosts add one, so 429 + Retry-After is
honoured."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from carts.connectors.base import (
    Connector,
    OrdersPage,
    Param,
    PermanentError,
    PushOutcome,
    QuantityUpdate,
    RateSpec,
    RemoteLine,
    RemoteOrder,
    RemoteProduct,
    describe,
    register,
)

# Normalized by what WooCommerce does with its managed stock (platforms.md),
# so the cart and the ledger move together: it takes stock when an order
# turns processing, on-hold or completed (a sale for us), not while pending
# (a reservation for the other carts only: `pending_orders_take_stock`), and
# gives it back on cancel (a return). "refunded" gives back only what the
# merchant restocked (`_restock_refunded_items` on the line), so for stock it
# stays a sale whose restocked quantity is returned.
STATUS = {
    "pending": "pending", "on-hold": "open", "processing": "open", "completed": "open",
    "cancelled": "cancelled", "failed": "cancelled", "refunded": "open",
}
MAX_BATCH = 100


@register
class WooCommerceConnector(Connector):
    platform = "woocommerce"
    label = "WooCommerce (REST v3)"
    params = (
        Param("consumer_key", "Consumer key", secret=True),
        Param("consumer_secret", "Consumer secret", secret=True),
        Param("webhook_secret", "Webhook secret", secret=True, required=False),
    )
    pushes_orders = True
    pending_orders_take_stock = False
    batch_size = MAX_BATCH
    rate = RateSpec(capacity=20, per_second=10)

    def api(self, path: str) -> str:
        return f"{self.url}/wp-json/wc/v3{path}"

    def auth(self) -> tuple[str, str]:
        return (str(self.values["consumer_key"]), str(self.values["consumer_secret"]))

    def get(self, path: str, params: dict | None = None):
        response = self.request("GET", self.api(path), params=params or {}, auth=self.auth())
        if response.status_code >= 400:
            raise PermanentError(f"GET {path} refused", response=describe(response))
        return response

    def _pages(self, path: str, params: dict) -> Iterator[dict]:
        page = 1
        while True:
            response = self.get(path, {**params, "per_page": 100, "page": page})
            yield from response.json()
            if page >= int(response.headers.get("X-WP-TotalPages", "1") or 1):
                return
            page += 1

    def list_products(self) -> Iterator[RemoteProduct]:
        for product in self._pages("/products", {}):
            if product.get("type") == "variable":
                for variation in self._pages(f"/products/{product['id']}/variations", {}):
                    yield RemoteProduct(
                        ref=f"v:{product['id']}:{variation['id']}", sku=variation.get("sku") or "",
                        barcode=_barcode(variation), title=product.get("name", ""),
                        product_id=str(product["id"]), quantity=_quantity(variation),
                    )
            else:
                yield RemoteProduct(
                    ref=f"p:{product['id']}", sku=product.get("sku") or "", barcode=_barcode(product),
                    title=product.get("name", ""), product_id=str(product["id"]), quantity=_quantity(product),
                )

    def fetch_quantities(self, refs: Iterable[str]) -> dict[str, int]:
        simple, variations = _split(refs)
        found: dict[str, int] = {}
        ids = sorted(simple)
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            for product in self._pages("/products", {"include": ",".join(chunk)}):
                if _quantity(product) is not None:
                    found[f"p:{product['id']}"] = _quantity(product)
        for parent, children in variations.items():
            for variation in self._pages(f"/products/{parent}/variations", {"include": ",".join(sorted(children))}):
                if _quantity(variation) is not None:
                    found[f"v:{parent}:{variation['id']}"] = _quantity(variation)
        return found

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        outcomes: dict[str, PushOutcome] = {}
        groups: dict[str, list[QuantityUpdate]] = {}
        for update in updates:
            parent = update.ref.split(":")[1] if update.ref.startswith("v:") else ""
            groups.setdefault(parent, []).append(update)
        for parent, group in groups.items():
            path = f"/products/{parent}/variations/batch" if parent else "/products/batch"
            for start in range(0, len(group), MAX_BATCH):
                chunk = group[start:start + MAX_BATCH]
                body = {"update": [
                    {"id": int(u.ref.split(":")[-1]), "manage_stock": True, "stock_quantity": u.quantity}
                    for u in chunk
                ]}
                response = self.request("POST", self.api(path), json=body, auth=self.auth(), sends=True)
                if response.status_code >= 400:
                    raise PermanentError(f"POST {path} refused", response=describe(response))
                answered = {str(item.get("id")): item for item in response.json().get("update", [])}
                for update in chunk:
                    item = answered.get(update.ref.split(":")[-1])
                    if item is None:
                        outcomes[update.ref] = PushOutcome(ref=update.ref, status="error",
                                                           message="missing from answer")
                    elif item.get("error"):
                        outcomes[update.ref] = PushOutcome(ref=update.ref, status="error",
                                                           message=json.dumps(item["error"])[:500])
                    else:
                        outcomes[update.ref] = PushOutcome(ref=update.ref, status="ok",
                                                           remote_quantity=_quantity(item))
        return [outcomes[u.ref] for u in updates]

    def fetch_orders_page(self, *, since: datetime | None, page: int) -> OrdersPage:
        """`modified_after` is strictly after, at whole seconds, and in the
        site's local time unless `dates_are_gmt=true`: "at or after `since`"
        is "after the second before it", in GMT. Ordered by modification so
        the shared cursor can page by (time, id)."""
        params = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "per_page": 100, "page": page}
        if since is not None:
            boundary = since.astimezone(UTC).replace(microsecond=0, tzinfo=None) - timedelta(seconds=1)
            params["modified_after"] = boundary.strftime("%Y-%m-%dT%H:%M:%S")
        response = self.request("GET", self.api("/orders"), params=params, auth=self.auth())
        if response.status_code == 400 and _code(response) == "woocommerce_rest_invalid_page_number":
            return OrdersPage(orders=(), more=False)  # orders vanished while we read: the query ends here
        if response.status_code >= 400:
            raise PermanentError("GET /orders refused", response=describe(response))
        pages = int(response.headers.get("X-WP-TotalPages", "1") or 1)
        return OrdersPage(orders=tuple(self._order(o) for o in response.json()), more=page < pages)

    def _order(self, data: dict) -> RemoteOrder:
        status = STATUS.get(data.get("status", ""), "pending")
        lines = tuple(
            RemoteLine(line_id=str(item["id"]), sku=item.get("sku") or "", quantity=Decimal(str(item["quantity"])),
                       title=item.get("name") or "",
                       refunded_quantity=Decimal(_line_meta(item, "_restock_refunded_items") or 0))
            for item in data.get("line_items") or []
        )
        return RemoteOrder(
            external_id=str(data["id"]), number=str(data.get("number") or data["id"]), status=status,
            remote_status=data.get("status", ""), placed_at=_gmt(data.get("date_created_gmt")),
            updated_at=_gmt(data.get("date_modified_gmt")), lines=lines, raw=data,
        )

    def verify_webhook(self, *, body: bytes, headers) -> bool:
        secret = str(self.values.get("webhook_secret") or "")
        sent = headers.get("X-WC-Webhook-Signature", "")
        if not secret or not sent:
            return False
        digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(digest, sent)

    def parse_webhook(self, *, body: bytes, headers) -> list[RemoteOrder]:
        return [self._order(json.loads(body))]


def _gmt(value):
    if not value:
        return None
    stamp = parse_datetime(value if value.endswith("Z") or "+" in value else value + "+00:00")
    return stamp


def _line_meta(item: dict, key: str) -> str:
    return next((str(m.get("value") or "") for m in item.get("meta_data") or [] if m.get("key") == key), "")


def _code(response) -> str:
    try:
        return str(response.json().get("code", ""))
    except (ValueError, AttributeError):
        return ""


def _quantity(item: dict) -> int | None:
    if not item.get("manage_stock") or item.get("stock_quantity") is None:
        return None
    return int(item["stock_quantity"])


def _barcode(item: dict) -> str:
    for meta in item.get("meta_data") or []:
        if meta.get("key") in {"_global_unique_id", "barcode", "_barcode"}:
            return str(meta.get("value") or "")
    return str(item.get("global_unique_id") or "")


def _split(refs: Iterable[str]) -> tuple[set[str], dict[str, set[str]]]:
    simple: set[str] = set()
    variations: dict[str, set[str]] = {}
    for ref in refs:
        parts = ref.split(":")
        if parts[0] == "p":
            simple.add(parts[1])
        elif parts[0] == "v":
            variations.setdefault(parts[1], set()).add(parts[2])
    return simple, variations
