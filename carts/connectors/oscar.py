"""django-oscar with django-oscar-api (oscar-peer.md): the real open-source
shop our end-to-end test runs against.

Refs are stock record ids. Oscar's checkout *allocates* stock (raises
`num_allocated`) and leaves `num_in_stock` until shipping, so the storefront
sells `num_in_stock - num_allocated`. We import those orders as sales, so to
make the storefront show our available-to-sell we write
`num_in_stock = quantity + num_allocated` (read just before the write), and we
read the shop's quantity back as `num_in_stock - num_allocated`. There is no
batch endpoint: one PATCH per stock record."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from carts.connectors.base import (
    Connector,
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

CANCELLED = {"cancelled"}


@register
class OscarConnector(Connector):
    platform = "oscar"
    label = "django-oscar (oscarapi admin API)"
    params = (
        Param("username", "Staff username"),
        Param("password", "Staff password", secret=True),
    )
    batch_size = 20
    rate = RateSpec(capacity=40, per_second=40)

    def auth(self) -> tuple[str, str]:
        return (str(self.values["username"]), str(self.values["password"]))

    def get_json(self, url: str):
        response = self.request("GET", url if url.startswith("http") else self.url + url, auth=self.auth())
        if response.status_code >= 400:
            raise PermanentError(f"GET {url} refused", response=describe(response))
        return response.json()

    def _list(self, path: str) -> Iterator[dict]:
        """Both a plain array and DRF pagination ({results, next})."""
        data = self.get_json(path)
        while True:
            if isinstance(data, list):
                yield from data
                return
            yield from data.get("results") or []
            if not data.get("next"):
                return
            data = self.get_json(data["next"])

    @staticmethod
    def _available(record: dict) -> int:
        return int(record.get("num_in_stock") or 0) - int(record.get("num_allocated") or 0)

    def list_products(self) -> Iterator[RemoteProduct]:
        for product in self._list("/api/admin/products/"):
            for record in product.get("stockrecords") or []:
                ref = record["url"].rstrip("/").rsplit("/", 1)[-1]
                yield RemoteProduct(ref=ref, sku=record.get("partner_sku") or "", barcode=product.get("upc") or "",
                                    title=product.get("title") or "", product_id=str(product.get("id")),
                                    quantity=self._available(record))

    def fetch_quantities(self, refs: Iterable[str]) -> dict[str, int]:
        return {ref: self._available(self.get_json(f"/api/admin/stockrecords/{ref}/")) for ref in refs}

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        outcomes = []
        for update in updates:
            record = self.get_json(f"/api/admin/stockrecords/{update.ref}/")
            allocated = int(record.get("num_allocated") or 0)
            response = self.request("PATCH", f"{self.url}/api/admin/stockrecords/{update.ref}/", auth=self.auth(),
                                    json={"num_in_stock": update.quantity + allocated}, sends=True)
            if response.status_code >= 400:
                outcomes.append(PushOutcome(ref=update.ref, status="error", message=describe(response)))
            else:
                outcomes.append(PushOutcome(ref=update.ref, status="ok",
                                            remote_quantity=self._available(response.json())))
        return outcomes

    def fetch_orders(self, cursor: dict) -> tuple[list[RemoteOrder], dict]:
        """No server-side filter: the list is newest first, so read until an
        order older than the cursor (with the cursor's own second as overlap)."""
        since = parse_datetime(cursor["placed_at"]) if cursor.get("placed_at") else None
        found = []
        for order in self._list("/api/admin/orders/"):
            placed = parse_datetime(order["date_placed"])
            if since and placed < since:
                break
            found.append((placed, order))
        found.reverse()
        orders = []
        for placed, order in found:
            lines = tuple(
                RemoteLine(line_id=str(line["id"]), sku=line.get("partner_sku") or "", barcode=line.get("upc") or "",
                           quantity=Decimal(str(line["quantity"])), title=line.get("title") or "")
                for line in self._list(order["lines"])
            )
            status = "cancelled" if str(order.get("status", "")).lower() in CANCELLED else "open"
            orders.append(RemoteOrder(external_id=str(order["id"]), number=str(order.get("number") or ""),
                                      status=status, remote_status=str(order.get("status") or ""),
                                      placed_at=placed, updated_at=placed, lines=lines, raw=order))
        newest = found[-1][0].isoformat() if found else cursor.get("placed_at")
        return orders, ({"placed_at": newest} if newest else {})
