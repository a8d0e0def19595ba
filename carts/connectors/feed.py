"""A wholesaler's feed: a CSV or XML file at a URL with SKU, EAN, quantity
and price per product. It can only be downloaded from (no inventory sync is
offered). Broken rows are reported one by one (row, reason) in `bad_rows`
while the good rows apply. Refs are SKUs (or the EAN where a row has none).

CSV: a header row with `sku`, `ean`, `quantity`, `price` (`;` or `,`).
XML: `<products><product><sku/><ean/><quantity/><price/></product>...</products>`."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET  # noqa: N817 - the usual name
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from carts.connectors.base import (
    BadRow,
    Connector,
    Param,
    PermanentError,
    RateSpec,
    RemoteProduct,
    describe,
    register,
)
from posinv.bounds import amount_problem, quantity_problem


@register
class FeedConnector(Connector):
    platform = "feed"
    label = "Wholesaler feed (CSV or XML at a URL)"
    params = (
        Param("format", "csv or xml (default: from the URL or the answer's content type)", required=False),
        Param("auth_token", "Bearer token (optional)", secret=True, required=False),
    )
    supports_inventory_sync = False
    supports_prices = True
    is_wholesaler_feed = True
    rate = RateSpec(capacity=5, per_second=1)
    timeout = 60.0

    def _fetch(self) -> tuple[str, str]:
        headers = {}
        if self.values.get("auth_token"):
            headers["Authorization"] = f"Bearer {self.values['auth_token']}"
        response = self.request("GET", self.url, headers=headers)
        if response.status_code >= 400:
            raise PermanentError("the feed could not be read", response=describe(response))
        kind = str(self.values.get("format") or "").lower()
        if not kind:
            content_type = response.headers.get("Content-Type", "")
            kind = "xml" if "xml" in content_type or self.url.lower().endswith(".xml") else "csv"
        return kind, response.text

    def list_products(self) -> Iterator[RemoteProduct]:
        self.bad_rows = []
        kind, text = self._fetch()
        rows = _xml_rows(text, self.bad_rows) if kind == "xml" else _csv_rows(text)
        for number, row in rows:
            product = _product(number, row, self.bad_rows)
            if product is not None:
                yield product

    def fetch_quantities(self, refs: Iterable[str]) -> dict[str, int]:
        wanted = set(refs)
        return {p.ref: p.quantity for p in self.list_products() if p.ref in wanted}


def _csv_rows(text: str):
    sample = text[:2000]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    for number, row in enumerate(reader, start=2):  # row 1 is the header
        yield number, {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}


def _xml_rows(text: str, bad_rows: list[BadRow]):
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise PermanentError(f"the feed is not well-formed XML: {exc}") from exc
    for number, node in enumerate(root.iter("product"), start=1):
        yield number, {child.tag.lower(): (child.text or "").strip() for child in node}


def _product(number: int, row: dict, bad_rows: list[BadRow]) -> RemoteProduct | None:
    sku, ean = row.get("sku", ""), row.get("ean", "")
    if not sku and not ean:
        bad_rows.append(BadRow(number, "neither sku nor ean"))
        return None
    try:
        quantity = Decimal(row.get("quantity", ""))
    except InvalidOperation:
        bad_rows.append(BadRow(number, f"quantity {row.get('quantity', '')!r} is not a number"))
        return None
    if not quantity.is_finite() or quantity < 0 or quantity != quantity.to_integral_value():
        bad_rows.append(BadRow(number, f"quantity {quantity} must be a whole number, not negative"))
        return None
    beyond = quantity_problem(quantity)
    if beyond:
        bad_rows.append(BadRow(number, f"quantity {quantity} {beyond}"))
        return None
    price = None
    if row.get("price"):
        try:
            price = Decimal(row["price"].replace(",", "."))
        except InvalidOperation:
            bad_rows.append(BadRow(number, f"price {row['price']!r} is not a number"))
            return None
        if not price.is_finite() or price < 0:
            bad_rows.append(BadRow(number, f"price {price} is negative"))
            return None
        beyond = amount_problem(price)
        if beyond:
            bad_rows.append(BadRow(number, f"price {price} {beyond}"))
            return None
    return RemoteProduct(ref=sku or ean, sku=sku, barcode=ean, title=row.get("name", ""), quantity=int(quantity),
                         price=price)
