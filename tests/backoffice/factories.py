"""Factories for the back-office tests: suppliers, stock through the
ledger, and sales recorded as real receipts (which post sale moves)."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from backoffice.models import Supplier, SupplierArticle
from pos.models import CashRegister
from pos.services.receipts import CustomerSpec, LineSpec, receipt_record
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

_seq = itertools.count(1)


def make_supplier(*, code: str = "SUP1", lead_time_days: int = 7, **extra) -> Supplier:
    return Supplier.objects.create(code=code, name=f"Supplier {code}", lead_time_days=lead_time_days, **extra)


def make_supplier_article(
    *,
    supplier,
    article,
    pack_size: str = "1",
    min_order_qty: str = "0",
    cost: str | None = None,
    lead_time_days: int | None = None,
    preferred: bool = True,
) -> SupplierArticle:
    return SupplierArticle.objects.create(
        supplier=supplier,
        article=article,
        supplier_sku=f"{supplier.code}-{article.sku}",
        pack_size=Decimal(pack_size),
        min_order_qty=Decimal(min_order_qty),
        cost=Decimal(cost) if cost is not None else None,
        lead_time_days=lead_time_days,
        preferred=preferred,
    )


def make_register(*, location, code: str | None = None) -> CashRegister:
    code = code or f"R{next(_seq)}"
    return CashRegister.objects.create(code=code, name=code, location=location)


def stock_receive(*, article, location, quantity: str, key: str | None = None) -> None:
    """Put stock in through the ledger (a goods receipt move)."""
    stock_moves_post(
        moves=[
            MoveSpec(
                kind="receipt",
                idempotency_key=key or f"test-stock-{next(_seq)}",
                quantity=Decimal(quantity),
                article_id=article.pk,
                location_id=location.pk,
            )
        ],
        origin=StockOrigin(kind="user", code="test"),
    )


def sell(
    *,
    register,
    at: datetime,
    items: list[tuple[str, str, str]],
    customer_no: str | None = None,
    discount: str = "0",
    receipt_no: str | None = None,
):
    """Record a receipt of (sku, quantity, unit price) lines at `at`."""
    return receipt_record(
        register=register,
        receipt_no=receipt_no or f"T-{next(_seq)}",
        created_at=at,
        lines=[
            LineSpec(
                line_no=index,
                sku=sku,
                quantity=Decimal(qty),
                unit_price=Decimal(price),
                discount=Decimal(discount) if index == 1 else Decimal(0),
            )
            for index, (sku, qty, price) in enumerate(items, start=1)
        ],
        customer=CustomerSpec(customer_no=customer_no) if customer_no else None,
    ).receipt
