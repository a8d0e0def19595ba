"""Carts, stores and feeds against the system's bound (posinv/bounds.py,
issue #16): a record carrying a figure beyond it is refused on its own (a
bad row, a held order line) while every other record of the same import or
download applies, and the import goes on from where it stands."""
from __future__ import annotations

from decimal import Decimal

import pytest

from carts.models import ExternalStore, ImportedOrder, ImportedOrderLine
from carts.services.links import links_match
from carts.services.orders import orders_import
from carts.services.stack import stack_sweep
from carts.services.warehouses import store_stock_run
from posinv.models import StockLevel, StockMove
from posinv.services.changes import changes_dispatch
from tests.carts.conftest import articles, link_all, make_woo_store, receive
from tests.carts.test_warehouses import bl_store, feed_store
from tests.factories import make_location
from tests.fakes.baselinker import FakeBaseLinker
from tests.fakes.wholesaler import FakeWholesaler

D = ExternalStore.Direction


@pytest.fixture
def warehouse(db):
    return make_location(code="WH1", name="Main warehouse", kind="warehouse")


def test_a_feed_row_beyond_the_bound_is_a_bad_row_and_the_others_apply(sync_on, warehouse):
    articles("W-1", "W-2", "W-3")
    with FakeWholesaler() as wholesaler:
        wholesaler.set_rows([
            {"sku": "W-1", "ean": "", "quantity": "7", "price": "1.10"},
            {"sku": "W-2", "ean": "", "quantity": "3000000000", "price": "2.00"},
            {"sku": "W-3", "ean": "", "quantity": "4", "price": "1000000000.00"},
        ])
        store = feed_store(wholesaler, stock_direction=D.DOWNLOAD, stock_target=warehouse)
        links_match(store=store)
        run = store_stock_run(store=store)

    assert [(b.row, b.reason) for b in run.bad_rows] == [
        (3, "quantity 3000000000 must be between -999,999,999.999 and 999,999,999.999 (the system's quantity bound)"),
        (4, "price 1000000000.00 must be between -999,999,999.99 and 999,999,999.99 (the system's amount bound)"),
    ]
    assert dict(StockLevel.objects.values_list("article__sku", "on_hand")) == {"W-1": Decimal(7)}


def test_a_stores_figure_beyond_the_bound_is_reported_and_the_others_are_counted(sync_on, warehouse):
    articles("P-0", "P-1", "P-2")
    with FakeBaseLinker() as baselinker:
        for n, stock in enumerate((5, 3000000000, 6)):
            baselinker.add(pid=str(100 + n), sku=f"P-{n}", stock=stock)
        store = bl_store(baselinker, stock_direction=D.DOWNLOAD, stock_target=warehouse)
        links_match(store=store)
        run = store_stock_run(store=store)

    assert [b.reason for b in run.bad_rows] == [
        "product 101: quantity 3000000000 must be between -999,999,999.999 and 999,999,999.999 "
        "(the system's quantity bound)"]
    assert dict(StockLevel.objects.values_list("article__sku", "on_hand")) == {"P-0": Decimal(5), "P-2": Decimal(6)}


def test_an_order_line_beyond_the_bound_is_held_and_the_import_goes_on(sync_on, woo, shop_location):
    articles("O-1", "O-2")
    for sku in ("O-1", "O-2"):
        woo.add_product(sku=sku, stock=10)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    woo.place_order(lines=[("O-1", 3000000000), ("O-2", 2)])
    woo.place_order(lines=[("O-1", 1)])

    result = orders_import(store=wc)

    assert (result.orders, result.failures) == (2, [])
    assert ImportedOrder.objects.count() == 2
    held = ImportedOrderLine.objects.get(sku="O-1", order__number=str(ImportedOrder.objects.order_by("pk")[0].number))
    assert (held.state, held.quantity) == ("held", Decimal(0))
    assert held.reason.startswith("the store sent quantity 3000000000: must be between -999,999,999.999")
    assert sorted(StockMove.objects.values_list("article__sku", "quantity")) == [
        ("O-1", Decimal(-1)), ("O-2", Decimal(-2))]
    # The cursor moved on: a second import finds nothing new and moves nothing more.
    assert orders_import(store=wc).failures == []
    assert StockMove.objects.count() == 2


def test_a_store_summing_full_locations_publishes_what_a_32_bit_field_holds(sync_on, woo, shop_location):
    """Two levels at the bound sum to twice it; the cart gets 999,999,999."""
    back_room = make_location(code="BACK", name="Back room")
    articles("F-1")
    woo.add_product(sku="F-1", stock=0)
    wc = make_woo_store(woo, location=shop_location)
    wc.locations.add(back_room)
    link_all(wc)
    receive("F-1", shop_location, 999_999_999)
    receive("F-1", back_room, 999_999_999, key="rcv:F-1:back")

    changes_dispatch()
    stack_sweep(store_id=wc.pk)

    assert woo.stock("F-1") == 999_999_999 < 2**31 - 1
