"""The record shapes of the register contract (DESIGN.md): one function per
table turns a saved row into the JSON that travels, and `record_hash` gives
the canonical digest that tells a duplicate from a conflict. Decimals travel
as strings, times as ISO 8601 in UTC."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

from pos.models import Customer, PaymentLine, PosProcess, Receipt, ReceiptLine, StockCount, SyncTable

QTY = Decimal("0.001")
CENT = Decimal("0.01")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def qty(value) -> str:
    return str(Decimal(value).quantize(QTY))


def money(value) -> str:
    return str(Decimal(value).quantize(CENT))


def record_hash(record: dict) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # "surrogatepass": a record as sent may hold an unpaired surrogate (kept
    # failed, apply.py); its hash must still tell a resend from a conflict.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def process_record(process: PosProcess, register_code: str) -> tuple[str, str, dict]:
    return (
        SyncTable.POS_PROCESS,
        f"pos_process:{process.process_no}",
        {
            "process_no": process.process_no,
            "register": register_code,
            "opened_at": iso(process.opened_at),
            "closed_at": iso(process.closed_at),
            "cashier": process.cashier,
            "status": process.status,
        },
    )


def receipt_record_of(receipt: Receipt, *, process_no: str | None, customer_no: str | None) -> tuple[str, str, dict]:
    return (
        SyncTable.RECEIPT,
        f"receipt:{receipt.receipt_no}",
        {
            "receipt_no": receipt.receipt_no,
            "process_no": process_no,
            "created_at": iso(receipt.created_at),
            "customer_no": customer_no,
            "total": money(receipt.total),
            "currency": receipt.currency,
        },
    )


def line_record(line: ReceiptLine, receipt_no: str) -> tuple[str, str, dict]:
    return (
        SyncTable.RECEIPT_LINE,
        f"receipt_line:{receipt_no}:{line.line_no}",
        {
            "receipt_no": receipt_no,
            "line_no": line.line_no,
            "sku": line.sku,
            "barcode": line.barcode,
            "quantity": qty(line.quantity),
            "unit_price": money(line.unit_price),
            "discount": money(line.discount),
        },
    )


def payment_record(payment: PaymentLine, receipt_no: str) -> tuple[str, str, dict]:
    return (
        SyncTable.PAYMENT_LINE,
        f"payment_line:{receipt_no}:{payment.line_no}",
        {
            "receipt_no": receipt_no,
            "line_no": payment.line_no,
            "method": payment.method,
            "amount": money(payment.amount),
        },
    )


def customer_record(customer: Customer) -> tuple[str, str, dict]:
    return (
        SyncTable.CUSTOMER,
        f"customer:{customer.customer_no}",
        {
            "customer_no": customer.customer_no,
            "name": customer.name,
            "email": customer.email,
            "card_no": customer.card_no,
        },
    )


def stock_count_record(count: StockCount) -> tuple[str, str, dict]:
    return (
        SyncTable.STOCK_COUNT,
        f"stock_count:{count.sku}:{iso(count.counted_at)}",
        {"sku": count.sku, "counted_qty": qty(count.counted_qty), "counted_at": iso(count.counted_at)},
    )
