"""Scanning at a till: one call gives the article, the quantity the code
stands for, the price for the register's price group valid today, and the
stock on hand and available at the register's location."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum
from django.utils import timezone

from pos.models import CashRegister
from posinv.models import Price, StockLevel
from retail.models import TransferLine, TransferOrder
from retail.services.codes import GRAMS_PER_KG, ResolvedCode, codes_resolve

CENT = Decimal("0.01")
QTY = Decimal("0.001")


def prices_current(*, article_ids: Iterable[int], group_id: int | None, on: date | None = None) -> dict[int, Decimal]:
    """The price valid on `on` (default today) per article in the group: the
    newest row whose valid_from is not in the future. One query."""
    article_ids = set(article_ids)
    if group_id is None or not article_ids:
        return {}
    today = on or timezone.localdate()
    current: dict[int, Decimal] = {}
    rows = (
        Price.objects.filter(article_id__in=article_ids, group_id=group_id, valid_from__lte=today)
        .order_by("article_id", "-valid_from")
        .values_list("article_id", "amount")
    )
    for article_id, amount in rows:
        current.setdefault(article_id, amount)
    return current


def stock_available(*, article_ids: Iterable[int], location_id: int) -> dict[int, tuple[Decimal, Decimal]]:
    """(on hand, available) per article at a location. Available is on hand
    less what draft transfer orders from this location have promised to
    ship. Two queries."""
    article_ids = set(article_ids)
    on_hand = dict(
        StockLevel.objects.filter(article_id__in=article_ids, location_id=location_id).values_list(
            "article_id", "on_hand"
        )
    )
    reserved = dict(
        TransferLine.objects.filter(
            article_id__in=article_ids, order__source_id=location_id, order__status=TransferOrder.Status.DRAFT
        )
        .values("article_id")
        .annotate(total=Sum("quantity"))
        .values_list("article_id", "total")
    )
    zero = Decimal("0.000")
    return {a: (on_hand.get(a, zero), on_hand.get(a, zero) - reserved.get(a, zero)) for a in article_ids}


def code_quantity(*, resolved: ResolvedCode, unit_price: Decimal | None) -> Decimal:
    """Article units one scan of this code stands for: the pack quantity,
    the label's weight in kg, or for a price label the label's amount over
    the price per unit (1 when no price is known)."""
    if resolved.weight_g is not None:
        return (Decimal(resolved.weight_g) / GRAMS_PER_KG).quantize(QTY)
    if resolved.label_amount is not None:
        if unit_price:
            return (resolved.label_amount / unit_price).quantize(QTY, rounding=ROUND_HALF_UP)
        return Decimal("1.000")
    return resolved.pack_qty.quantize(QTY)


@dataclass(frozen=True)
class ScanAnswer:
    """Everything a till shows after a scan."""

    resolved: ResolvedCode
    quantity: Decimal
    amount: Decimal | None
    currency: str
    on_hand: Decimal
    available: Decimal
    location_code: str

    def as_dict(self) -> dict:
        def text(value):
            return None if value is None else str(value)

        code = self.resolved
        return {
            "code": code.code,
            "kind": code.kind,
            "gtin": code.gtin,
            "article": {"sku": code.sku, "name": code.name, "unit": code.unit, "category": code.category},
            "quantity": text(self.quantity),
            "weight_g": code.weight_g,
            "unit_price": text(code.unit_price),
            "amount": text(self.amount),
            "currency": self.currency,
            "location": self.location_code,
            "on_hand": text(self.on_hand),
            "available": text(self.available),
        }


def register_scan(*, register: CashRegister, code: str) -> ScanAnswer:
    """Resolve one scanned code for `register` (its location, price group
    and currency). Raises InvalidInput (bad code, check digit) or NotFound
    (no article carries it). Three queries: code with article and price,
    stock level, draft transfers (plus one for layouts on a scale label)."""
    resolved = codes_resolve(codes=[code], price_group_id=register.price_group_id)[0]
    unit_price = resolved.unit_price
    quantity = code_quantity(resolved=resolved, unit_price=unit_price)
    if resolved.label_amount is not None:
        amount = resolved.label_amount.quantize(CENT)
    elif unit_price is not None:
        amount = (unit_price * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        amount = None
    on_hand, available = stock_available(article_ids=[resolved.article_id], location_id=register.location_id)[
        resolved.article_id
    ]
    currency = register.price_group.currency if register.price_group_id else register.currency
    return ScanAnswer(
        resolved=resolved,
        quantity=quantity,
        amount=amount,
        currency=currency,
        on_hand=on_hand,
        available=available,
        location_code=register.location.code,
    )
