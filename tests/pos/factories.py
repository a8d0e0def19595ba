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


def receipt_entries(
    first_no: int, receipt_no: str, items: list[tuple[str, str, str]], *, created_at: str = "2026-03-02T09:00:00+00:00"
) -> list[dict]:
    """Entries for one receipt as a register node writes them: receipt, lines, one cash payment."""
    total = sum((Decimal(qty) * Decimal(price) for _, qty, price in items), Decimal(0)).quantize(Decimal("0.01"))
    records = [
        ("receipt", f"receipt:{receipt_no}", {"receipt_no": receipt_no, "process_no": None, "created_at": created_at,
                                              "customer_no": None, "total": str(total), "currency": "EUR"}),
    ]
    for line_no, (sku, qty, price) in enumerate(items, start=1):
        records.append(("receipt_line", f"receipt_line:{receipt_no}:{line_no}", {
            "receipt_no": receipt_no, "line_no": line_no, "sku": sku, "barcode": "",
            "quantity": str(Decimal(qty).quantize(Decimal("0.001"))), "unit_price": price, "discount": "0.00"}))
    records.append(("payment_line", f"payment_line:{receipt_no}:1",
                    {"receipt_no": receipt_no, "line_no": 1, "method": "cash", "amount": str(total)}))
    return [
        {"entry_no": first_no + offset, "table": table, "record_id": record_id, "record": record}
        for offset, (table, record_id, record) in enumerate(records)
    ]
