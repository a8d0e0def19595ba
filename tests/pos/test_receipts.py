"""receipt_record: receipt, lines, payments and ledger moves in one transaction."""
from __future__ import annotations

from decimal import Decimal

import pytest

from pos.models import Customer, Receipt, ReceiptLine, SyncEntry
from pos.services.receipts import CustomerSpec, receipt_record
from posinv.exceptions import Conflict, InvalidInput
from posinv.models import StockLevel, StockMove
from tests.factories import make_article
from tests.pos.factories import T0, cash, lines, make_register

pytestmark = pytest.mark.django_db


def on_hand(article, location) -> Decimal:
    return StockLevel.objects.get(article=article, location=location).on_hand


def test_receipt_on_main_posts_sale_and_return_moves_keyed_by_register_receipt_and_line(article, store):
    register = make_register(location=store)
    banana = make_article(sku="B-1")

    recorded = receipt_record(
        register=register,
        receipt_no="R1-000001",
        created_at=T0,
        lines=lines(("A-1", "3", "1.20"), ("B-1", "-1", "0.50")),
        payments=cash("3.10"),
        customer=CustomerSpec(customer_no="C-7", name="Ada"),
    )

    receipt = recorded.receipt
    assert (receipt.total, receipt.source, receipt.customer.customer_no) == (Decimal("3.10"), "live", "C-7")
    assert on_hand(article, store) == Decimal("-3")
    assert on_hand(banana, store) == Decimal("1")
    moves = {m.idempotency_key: (m.kind, m.quantity) for m in StockMove.objects.all()}
    assert moves == {"pos:R1:R1-000001:1": ("sale", Decimal("-3")), "pos:R1:R1-000001:2": ("return", Decimal("1"))}
    line_moves = dict(ReceiptLine.objects.values_list("line_no", "stock_move__idempotency_key"))
    assert line_moves == {1: "pos:R1:R1-000001:1", 2: "pos:R1:R1-000001:2"}
    assert SyncEntry.objects.count() == 0  # the main system writes no outbox


def test_same_receipt_again_is_a_duplicate_and_moves_nothing(article, store):
    register = make_register(location=store)
    first = receipt_record(register=register, receipt_no="R-1", created_at=T0, lines=lines(("A-1", "2", "1.00")))

    again = receipt_record(register=register, receipt_no="R-1", created_at=T0, lines=lines(("A-1", "2", "1.00")))

    assert again.duplicate is True
    assert again.move_ids == first.move_ids
    assert StockMove.objects.count() == 1
    assert on_hand(article, store) == Decimal("-2")


def test_same_receipt_no_with_other_lines_is_a_conflict(article, store):
    register = make_register(location=store)
    receipt_record(register=register, receipt_no="R-1", created_at=T0, lines=lines(("A-1", "2", "1.00")))

    with pytest.raises(Conflict):
        receipt_record(register=register, receipt_no="R-1", created_at=T0, lines=lines(("A-1", "5", "1.00")))

    assert on_hand(article, store) == Decimal("-2")


def test_unknown_sku_on_main_refuses_the_whole_receipt_naming_the_line(article, store):
    register = make_register(location=store)

    with pytest.raises(InvalidInput) as caught:
        receipt_record(
            register=register,
            receipt_no="R-1",
            created_at=T0,
            lines=lines(("A-1", "1", "1.00"), ("NOPE", "1", "2.00")),
            customer=CustomerSpec(customer_no="C-1"),
        )

    assert [(p.field, p.reason) for p in caught.value.problems] == [("lines[1].sku", "unknown sku 'NOPE'")]
    assert (Receipt.objects.count(), StockMove.objects.count(), Customer.objects.count()) == (0, 0, 0)


def test_bad_numbers_are_named_by_field(store):
    register = make_register(location=store)

    with pytest.raises(InvalidInput) as caught:
        receipt_record(
            register=register, receipt_no="R-1", created_at=T0, lines=lines(("A-1", "0", "1.001"))
        )

    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("lines[0].quantity", "must not be zero"),
        ("lines[0].unit_price", "at most 2 decimal places"),
    ]
    assert Receipt.objects.count() == 0


def test_on_a_register_node_lines_are_kept_as_sent_and_entries_written_gap_free(settings, store):
    settings.POSINV_NODE = "register"
    register = make_register(location=store, tables=["receipt", "receipt_line"])

    first = receipt_record(
        register=register, receipt_no="R-1", created_at=T0, lines=lines(("UNKNOWN", "1", "1.00")), payments=cash("1")
    )
    second = receipt_record(
        register=register, receipt_no="R-2", created_at=T0, lines=lines(("X", "1", "1.00"), ("Y", "2", "1.00"))
    )

    assert (first.entry_nos, second.entry_nos) == ([1, 2], [3, 4, 5])
    assert StockMove.objects.count() == 0
    entries = list(SyncEntry.objects.order_by("entry_no").values_list("entry_no", "table", "record_id", "state"))
    assert entries == [
        (1, "receipt", "receipt:R-1", "pending"),
        (2, "receipt_line", "receipt_line:R-1:1", "pending"),
        (3, "receipt", "receipt:R-2", "pending"),
        (4, "receipt_line", "receipt_line:R-2:1", "pending"),
        (5, "receipt_line", "receipt_line:R-2:2", "pending"),
    ]
    assert SyncEntry.objects.get(entry_no=4).record == {
        "receipt_no": "R-2",
        "line_no": 1,
        "sku": "X",
        "barcode": "",
        "quantity": "1.000",
        "unit_price": "1.00",
        "discount": "0.00",
    }
    assert SyncEntry.objects.get(entry_no=1).record == {
        "receipt_no": "R-1",
        "process_no": None,
        "created_at": "2026-03-02T09:00:00+00:00",
        "customer_no": None,
        "total": "1.00",
        "currency": "EUR",
    }
