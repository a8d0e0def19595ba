"""Factories for the pos tests."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pos.models import CashRegister
from pos.services.receipts import LineSpec, PaymentSpec

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_register(*, code: str = "R1", location, sync_type: str = "push", **extra) -> CashRegister:
    return CashRegister.objects.create(code=code, name=f"Till {code}", location=location, sync_type=sync_type, **extra)


def lines(*items: tuple[str, str, str]) -> list[LineSpec]:
    """LineSpecs from (sku, quantity, unit_price) tuples, numbered from 1."""
    return [
        LineSpec(line_no=index, sku=sku, quantity=Decimal(qty), unit_price=Decimal(price))
        for index, (sku, qty, price) in enumerate(items, start=1)
    ]


def cash(amount: str) -> list[PaymentSpec]:
    return [PaymentSpec(line_no=1, method="cash", amount=Decimal(amount))]
