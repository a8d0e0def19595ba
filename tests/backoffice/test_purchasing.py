"""Order suggestions to purchase orders: the suggestion lifecycle, drafts
grouped per supplier and rounded to packs and minimums, states, and
receiving through the ledger (idempotent per delivery note)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backoffice.models import GoodsReceipt, PurchaseOrder, PurchaseOrderLine
from backoffice.services.purchasing import (
    ReceiveSpec,
    order_quantity_round,
    purchase_order_cancel,
    purchase_order_receive,
    purchase_order_send,
    purchase_orders_draft,
)
from backoffice.services.reorder import reorder_level_set
from posinv.exceptions import Conflict, InvalidInput
from posinv.models import ReorderSuggestion, StockLevel, StockMove
from posinv.services.changes import changes_dispatch
from posinv.services.suggestions import suggestion_open
from tests.backoffice.factories import make_register, make_supplier, make_supplier_article, sell, stock_receive
from tests.factories import make_article, make_location

T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def on_hand(article, location) -> Decimal:
    return StockLevel.objects.get(article=article, location=location).on_hand


@pytest.mark.parametrize(
    ("needed", "pack", "minimum", "expected"),
    [
        ("7", "6", "0", "12.000"),
        ("12", "6", "0", "12.000"),
        ("3", "1", "10", "10.000"),
        ("3", "4", "10", "12.000"),
        ("0.5", "0.25", "0", "0.500"),
    ],
)
def test_order_quantity_rounds_up_to_packs_and_minimum(needed, pack, minimum, expected):
    assert order_quantity_round(
        needed=Decimal(needed), pack_size=Decimal(pack), min_order_qty=Decimal(minimum)
    ) == Decimal(expected)


@pytest.fixture
def shop(db):
    store = make_location(code="S1")
    register = make_register(location=store, code="R1")
    apple = make_article(sku="APPLE")
    pear = make_article(sku="PEAR")
    fruit = make_supplier(code="FRUIT")
    make_supplier_article(supplier=fruit, article=apple, pack_size="6", min_order_qty="12", cost="0.40")
    make_supplier_article(supplier=fruit, article=pear, pack_size="10", cost="0.55")
    stock_receive(article=apple, location=store, quantity="30")
    stock_receive(article=pear, location=store, quantity="30")
    reorder_level_set(article_id=apple.pk, location_id=store.pk, reorder_point="20", order_up_to="40")
    reorder_level_set(article_id=pear.pk, location_id=store.pk, reorder_point="10", order_up_to="25")
    changes_dispatch()
    return store, register, apple, pear, fruit


def test_a_suggestion_opens_below_the_reorder_point_is_updated_not_duplicated_and_closes_when_stock_recovers(shop):
    store, register, apple, _, _ = shop
    assert not ReorderSuggestion.objects.filter(article=apple).exists()

    sell(register=register, at=T, items=[("APPLE", "15", "1.00")])
    changes_dispatch()
    open_rows = ReorderSuggestion.objects.filter(article=apple, location=store, state="open")
    assert [(s.quantity_on_hand, s.trigger_level, s.suggested_quantity) for s in open_rows] == [
        (Decimal("15.000"), Decimal("20.000"), Decimal("25.000"))
    ]

    sell(register=register, at=T, items=[("APPLE", "5", "1.00")])
    changes_dispatch()
    assert [(s.quantity_on_hand, s.suggested_quantity) for s in open_rows.all()] == [
        (Decimal("10.000"), Decimal("30.000"))
    ]
    assert ReorderSuggestion.objects.filter(article=apple).count() == 1

    stock_receive(article=apple, location=store, quantity="25")
    changes_dispatch()
    assert list(ReorderSuggestion.objects.filter(article=apple).values_list("state", flat=True)) == ["closed"]


def test_changing_the_reorder_point_by_hand_opens_the_suggestion_at_once(shop):
    store, _, apple, _, _ = shop

    reorder_level_set(article_id=apple.pk, location_id=store.pk, reorder_point="35", order_up_to="50")

    suggestion = ReorderSuggestion.objects.get(article=apple, state="open")
    assert (suggestion.trigger_level, suggestion.suggested_quantity) == (Decimal("35.000"), Decimal("20.000"))


def test_suggestions_from_reorder_points_and_trays_become_one_draft_per_supplier_rounded_to_packs(shop):
    store, register, apple, pear, fruit = shop
    cabinet = make_location(code="CAB1", kind="cabinet")
    nuts = make_article(sku="NUTS")
    dry = make_supplier(code="DRY")
    make_supplier_article(supplier=dry, article=nuts, pack_size="5", cost="2.00")
    sell(register=register, at=T, items=[("APPLE", "23", "1.00"), ("PEAR", "22", "1.00")])
    changes_dispatch()
    suggestion_open(
        article_id=nuts.pk,
        location_id=cabinet.pk,
        source="tray",
        source_ref="T-0001",
        quantity_on_hand=Decimal("2"),
        trigger_level=Decimal("5"),
        suggested_quantity=Decimal("8"),
    )

    result = purchase_orders_draft()

    orders = {o.number: o for o in PurchaseOrder.objects.all()}
    assert len(orders) == 2 and result.skipped == []
    fruit_order = PurchaseOrder.objects.get(supplier=fruit)
    assert (fruit_order.state, fruit_order.location) == ("draft", store)
    # apple: 40 - 7 = 33 -> 6 packs of 6 = 36; pear: 25 - 8 = 17 -> 2 packs of 10 = 20
    assert list(fruit_order.lines.order_by("line_no").values_list("article__sku", "quantity_ordered", "unit_cost")) == [
        ("APPLE", Decimal("36.000"), Decimal("0.4000")),
        ("PEAR", Decimal("20.000"), Decimal("0.5500")),
    ]
    dry_order = PurchaseOrder.objects.get(supplier=dry)
    assert (dry_order.location, list(dry_order.lines.values_list("article__sku", "quantity_ordered"))) == (
        cabinet,
        [("NUTS", Decimal("10.000"))],
    )


def test_drafting_again_orders_nothing_twice(shop):
    _, register, _, _, _ = shop
    sell(register=register, at=T, items=[("APPLE", "23", "1.00")])
    changes_dispatch()
    purchase_orders_draft()

    again = purchase_orders_draft()

    assert again.orders == [] and again.lines_written == 0
    assert [reason for _, reason in again.skipped] == ["already on order"]
    assert list(PurchaseOrderLine.objects.values_list("article__sku", "quantity_ordered")) == [
        ("APPLE", Decimal("36.000"))
    ]


def test_an_article_without_supplier_is_skipped_with_a_reason(shop):
    store, register, *_ = shop
    loose = make_article(sku="LOOSE")
    stock_receive(article=loose, location=store, quantity="1")
    reorder_level_set(article_id=loose.pk, location_id=store.pk, reorder_point="5", order_up_to="10")

    result = purchase_orders_draft()

    assert [reason for _, reason in result.skipped] == ["no preferred active supplier for this article"]
    assert not PurchaseOrder.objects.exists()


@pytest.fixture
def sent_order(shop):
    _, register, *_ = shop
    sell(register=register, at=T, items=[("APPLE", "23", "1.00"), ("PEAR", "22", "1.00")])
    changes_dispatch()
    order = purchase_orders_draft().orders[0]
    return purchase_order_send(order_id=order.pk)


def test_receiving_posts_receipt_moves_and_goes_partly_received_then_received(shop, sent_order):
    store, _, apple, pear, _ = shop
    assert on_hand(apple, store) == Decimal("7.000")

    first = purchase_order_receive(
        order_id=sent_order.pk, delivery_note="DN-1", lines=[ReceiveSpec(line_no=1, quantity=Decimal("30"))]
    )
    assert first.order.state == "partly_received"
    assert on_hand(apple, store) == Decimal("37.000")
    move = StockMove.objects.get(pk=first.move_ids[1])
    assert (move.kind, move.quantity, move.idempotency_key) == (
        "receipt",
        Decimal("30.000"),
        f"po:{sent_order.number}:DN-1:1",
    )

    second = purchase_order_receive(
        order_id=sent_order.pk,
        delivery_note="DN-2",
        lines=[ReceiveSpec(line_no=1, quantity=Decimal("6")), ReceiveSpec(line_no=2, quantity=Decimal("20"))],
    )
    assert second.order.state == "received" and second.order.received_at is not None
    assert (on_hand(apple, store), on_hand(pear, store)) == (Decimal("43.000"), Decimal("28.000"))
    changes_dispatch()
    assert set(ReorderSuggestion.objects.values_list("state", flat=True)) == {"closed"}


def test_booking_the_same_delivery_note_again_moves_nothing(shop, sent_order):
    store, _, apple, _, _ = shop
    lines = [ReceiveSpec(line_no=1, quantity=Decimal("30"))]
    first = purchase_order_receive(order_id=sent_order.pk, delivery_note="DN-1", lines=lines)

    again = purchase_order_receive(order_id=sent_order.pk, delivery_note="DN-1", lines=lines)

    assert again.duplicate is True and again.move_ids == first.move_ids
    assert on_hand(apple, store) == Decimal("37.000")
    assert PurchaseOrderLine.objects.get(order=sent_order, line_no=1).quantity_received == Decimal("30.000")
    assert GoodsReceipt.objects.count() == 1


def test_the_same_delivery_note_with_other_lines_is_a_conflict(shop, sent_order):
    store, _, apple, _, _ = shop
    purchase_order_receive(
        order_id=sent_order.pk, delivery_note="DN-1", lines=[ReceiveSpec(line_no=1, quantity=Decimal("30"))]
    )

    with pytest.raises(Conflict) as caught:
        purchase_order_receive(
            order_id=sent_order.pk, delivery_note="DN-1", lines=[ReceiveSpec(line_no=1, quantity=Decimal("31"))]
        )

    assert caught.value.problems[0].field == "delivery_note"
    assert on_hand(apple, store) == Decimal("37.000")


def test_a_bad_delivery_is_refused_whole_and_moves_nothing(shop, sent_order):
    store, _, apple, pear, _ = shop
    moves_before = StockMove.objects.count()

    with pytest.raises(InvalidInput) as caught:
        purchase_order_receive(
            order_id=sent_order.pk,
            delivery_note="DN-1",
            lines=[
                ReceiveSpec(line_no=1, quantity=Decimal("10")),
                ReceiveSpec(line_no=2, quantity=Decimal("21")),
                ReceiveSpec(line_no=9, quantity=Decimal("1")),
                ReceiveSpec(line_no=1, quantity=Decimal("-1")),
            ],
        )

    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("lines[1].quantity", "21 is more than the 20.000 still outstanding on line 2"),
        ("lines[2].line_no", f"{sent_order.number} has no line 9"),
        ("lines[3].line_no", "line 1 is given twice"),
        ("lines[3].quantity", "must be a positive number with at most 3 decimals"),
    ]
    assert StockMove.objects.count() == moves_before
    assert (on_hand(apple, store), on_hand(pear, store)) == (Decimal("7.000"), Decimal("8.000"))
    assert not GoodsReceipt.objects.exists()
    assert PurchaseOrder.objects.get(pk=sent_order.pk).state == "sent"


def test_illegal_state_changes_are_refused(shop, sent_order):
    draft = PurchaseOrder.objects.create(number="PO-X", supplier=sent_order.supplier, location=sent_order.location)

    with pytest.raises(InvalidInput, match="has no lines"):
        purchase_order_send(order_id=draft.pk)
    with pytest.raises(InvalidInput, match="only a sent order receives goods"):
        purchase_order_receive(
            order_id=draft.pk, delivery_note="DN", lines=[ReceiveSpec(line_no=1, quantity=Decimal(1))]
        )
    with pytest.raises(InvalidInput, match="is sent; cannot go to sent"):
        purchase_order_send(order_id=sent_order.pk)
    purchase_order_receive(
        order_id=sent_order.pk, delivery_note="DN", lines=[ReceiveSpec(line_no=1, quantity=Decimal(1))]
    )
    with pytest.raises(InvalidInput, match="is partly received; cannot go to cancelled"):
        purchase_order_cancel(order_id=sent_order.pk)
    assert purchase_order_cancel(order_id=draft.pk).state == "cancelled"
    assert PurchaseOrder.objects.get(pk=sent_order.pk).state == "partly_received"
