"""A generic signed webhook, for any platform without a connector.

Quantities: `POST <url>` with `{"store": code, "quantities": [{"sku", "quantity"}]}`,
signed `X-Posinv-Signature: sha256=<hex HMAC of "<timestamp>.<body>">` with
`X-Posinv-Timestamp`. Orders: the platform posts
`{"orders": [{"id", "number", "status", "updated_at", "lines": [{"id", "sku", "quantity", "refunded_quantity"}]}]}`
to `/api/v1/carts/<code>/webhook/`, signed the same way (5 minutes' tolerance).
Refs are SKUs. The receiver cannot be read back, so Get QOH is not offered."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

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
    Unsupported,
    describe,
    register,
)
from posinv.exceptions import InvalidInput, Problem

TOLERANCE_SECONDS = 300
STATUSES = {"pending", "open", "cancelled", "refunded"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@register
class WebhookConnector(Connector):
    platform = "webhook"
    label = "Generic signed webhook"
    params = (
        Param("secret", "Signing secret", secret=True),
        Param("products_url", "URL listing products (optional)", required=False),
    )
    supports_get_qoh = False
    pushes_orders = True
    batch_size = 500
    rate = RateSpec(capacity=20, per_second=10)

    def push_quantities(self, updates: list[QuantityUpdate]) -> list[PushOutcome]:
        body = json.dumps({"quantities": [{"sku": u.ref, "quantity": u.quantity} for u in updates]}).encode()
        stamp = str(int(time.time()))
        response = self.request("POST", self.url, data=body, sends=True, headers={
            "Content-Type": "application/json", "X-Posinv-Timestamp": stamp,
            "X-Posinv-Signature": sign(str(self.values["secret"]), stamp, body)})
        if response.status_code >= 400:
            raise PermanentError("receiver refused the quantities", response=describe(response))
        return [PushOutcome(ref=u.ref, status="ok") for u in updates]

    def list_products(self) -> Iterator[RemoteProduct]:
        if not self.values.get("products_url"):
            raise Unsupported("this webhook has no products_url to list products from")
        response = self.request("GET", str(self.values["products_url"]))
        for item in response.json():
            yield RemoteProduct(ref=item["sku"], sku=item["sku"], barcode=item.get("barcode", ""),
                                title=item.get("title", ""))

    def verify_webhook(self, *, body: bytes, headers) -> bool:
        stamp = headers.get("X-Posinv-Timestamp", "")
        sent = headers.get("X-Posinv-Signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_SECONDS:
            return False
        return hmac.compare_digest(sign(str(self.values["secret"]), stamp, body), sent)

    def parse_webhook(self, *, body: bytes, headers) -> list[RemoteOrder]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise InvalidInput([Problem(field="body", reason=f"not JSON: {exc}")]) from exc
        if not isinstance(data, dict) or not isinstance(data.get("orders"), list):
            raise InvalidInput([Problem(field="orders", reason="a list of orders is required")])
        orders = []
        for index, raw in enumerate(data["orders"]):
            where = f"orders[{index}]"
            if not isinstance(raw, dict) or not str(raw.get("id", "")).strip():
                raise InvalidInput([Problem(field=f"{where}.id", reason="required")])
            if raw.get("status") not in STATUSES:
                raise InvalidInput([Problem(field=f"{where}.status",
                                            reason=f"one of {', '.join(sorted(STATUSES))}")])
            lines = []
            for number, line in enumerate(raw.get("lines") or []):
                try:
                    quantity = Decimal(str(line["quantity"]))
                    refunded = Decimal(str(line.get("refunded_quantity", 0)))
                except (KeyError, InvalidOperation, TypeError) as exc:
                    raise InvalidInput([Problem(field=f"{where}.lines[{number}].quantity",
                                                reason="a number is required")]) from exc
                if quantity <= 0 or not str(line.get("id", "")).strip():
                    raise InvalidInput([Problem(field=f"{where}.lines[{number}]",
                                                reason="id and a positive quantity are required")])
                lines.append(RemoteLine(line_id=str(line["id"]), sku=str(line.get("sku", "")), quantity=quantity,
                                        refunded_quantity=refunded))
            updated = parse_datetime(raw["updated_at"]) if raw.get("updated_at") else None
            orders.append(RemoteOrder(external_id=str(raw["id"]), number=str(raw.get("number", raw["id"])),
                                      status=raw["status"], remote_status=raw["status"], placed_at=updated,
                                      updated_at=updated, lines=tuple(lines), raw=raw))
        return orders
