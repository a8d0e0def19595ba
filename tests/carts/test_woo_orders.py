"""WooCommerce orders against the strict fake: through every status
transition the cart and the ledger stay equal, and the shared (modified_at,
id) cursor loses nothing and doubles nothing while orders change under a
paging import."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from carts.models import ExternalStore, ImportedOrder, StackEntry
from carts.services.order_cursor import OrderCursor
from carts.services.orders import orders_import
from carts.services.stack import stack_sweep
from carts.services.stores import store_available
from posinv.models import Article, StockLevel, StockMove
from posinv.services.changes import changes_dispatch
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive


def _settle(*stores: ExternalStore) -> None:
    """What the workers would do: dispatch the outbox, then sweep each store's stack."""
    changes_dispatch()
    for store in stores:
        stack_sweep(store_id=store.pk, time_budget=5)
    assert not StackEntry.objects.filter(state__in=["waiting", "sending", "failed"]).exists()


def _figures(sku: str, woo, shopify, wc, shop) -> dict:
    article_id = Article.objects.get(sku=sku).pk
    return {"woo": woo.stock(sku), "woo ledger": store_available(store=wc, article_ids=[article_id])[article_id],
            "shopify": shopify.available(sku),
            "shopify ledger": store_available(store=shop, article_ids=[article_id])[article_id]}


def _on_hand(sku: str) -> Decimal:
    return StockLevel.objects.get(article__sku=sku).on_hand


@pytest.fixture
def two_carts(sync_on, woo, shopify, shop_location):
    """A-1: 10 on hand at the web warehouse, sold by WooCommerce (which
    imports orders) and Shopify, both showing 10."""
    articles("A-1")
    woo.add_product(sku="A-1", stock=10)
    shopify.add_variant(sku="A-1", available=10)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(wc)
    link_all(shop)
    receive("A-1", shop_location, 10)
    _settle(wc, shop)
    assert _figures("A-1", woo, shopify, wc, shop) == {"woo": 10, "woo ledger": 10, "shopify": 10,
                                                       "shopify ledger": 10}
    return wc, shop


# (what happens in WooCommerce, step by step) -> after each step: (on hand, Woo shows, Shopify shows)
TRANSITIONS = {
    "pending -> processing -> completed": (
        [("place", "pending"), ("status", "processing"), ("status", "completed")], [(10, 10, 7), (7, 7, 7), (7, 7, 7)]),
    "pending -> cancelled": ([("place", "pending"), ("status", "cancelled")], [(10, 10, 7), (10, 10, 10)]),
    "processing -> cancelled": ([("place", "processing"), ("status", "cancelled")], [(7, 7, 7), (10, 10, 10)]),
    "on-hold -> processing": ([("place", "on-hold"), ("status", "processing")], [(7, 7, 7), (7, 7, 7)]),
    "refund with restock": ([("place", "processing"), ("refund", True)], [(7, 7, 7), (10, 10, 10)]),
    "refund without restock": ([("place", "processing"), ("refund", False)], [(7, 7, 7), (7, 7, 7)]),
    "partial refund with restock, then cancelled": (
        [("place", "processing"), ("refund-1", True), ("status", "cancelled")], [(7, 7, 7), (9, 9, 9), (10, 10, 10)]),
}


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_cart_and_ledger_stay_equal_through_each_order_status_transition(name, two_carts, woo, shopify):
    wc, shop = two_carts
    steps, expected = TRANSITIONS[name]
    order = None
    for (action, argument), (on_hand, woo_shows, shopify_shows) in zip(steps, expected, strict=True):
        woo.advance(1)
        if action == "place":
            order = woo.place_order(lines=[("A-1", 3)], status=argument)
        elif action == "status":
            woo.set_order_status(order, argument)
        elif action == "refund":
            woo.refund(order, restock=argument)
        else:
            woo.refund(order, lines={"A-1": 2}, restock=argument)
        orders_import(store=wc)
        _settle(wc, shop)
        assert (_on_hand("A-1"), *_figures("A-1", woo, shopify, wc, shop).values()) == (
            on_hand, woo_shows, woo_shows, shopify_shows, shopify_shows), f"after {action} {argument}"
    # and the moves add up: one sale at most, returns only of what came back
    assert StockMove.objects.filter(kind="order").count() <= 1


def test_a_cancellation_on_page_1_made_while_page_2_is_read_is_not_lost_nor_anything_doubled(sync_on, woo,
                                                                                             shop_location):
    articles("A-1")
    woo.add_product(sku="A-1", stock=1000)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    link_all(wc)
    receive("A-1", shop_location, 1000)
    orders = []
    for n in range(250):  # three pages, ten orders a second
        if n % 10 == 0:
            woo.advance(1)
        orders.append(woo.place_order(lines=[("A-1", 1)]))
    reads = []

    def meanwhile(request):
        if request.path.endswith("/orders"):
            reads.append(request.query)
            if len(reads) == 2:  # while the next page is fetched, the shop cancels an order of page 1
                woo.advance(1)
                woo.set_order_status(orders[5], "cancelled")
                # and a later order is placed: "the newest modification seen" would jump past the cancellation
                woo.advance(2)
                orders.append(woo.place_order(lines=[("A-1", 2)]))

    woo.on_request = meanwhile
    result = orders_import(store=wc)
    woo.on_request = None
    assert result.failures == []
    assert ImportedOrder.objects.count() == 251
    cancelled = ImportedOrder.objects.get(external_id=str(orders[5]["id"]))
    assert (cancelled.status, cancelled.lines.get().state) == ("cancelled", "returned")
    # every order sold once, the cancelled one came back once
    assert StockMove.objects.filter(kind="order").count() == 251
    assert StockMove.objects.filter(kind="return").count() == 1
    assert _on_hand("A-1") == Decimal(1000 - 250 - 2 + 1) == woo.stock("A-1")
    # a second run finds nothing new, in one request
    reads.clear()
    woo.on_request = lambda request: reads.append(request.query)
    again = orders_import(store=wc)
    assert (again.orders, len(reads)) == (0, 1)
    assert StockMove.objects.filter(kind__in=["order", "return"]).count() == 252


def test_an_order_changed_twice_within_one_second_is_applied_twice_and_an_unchanged_one_never_again(
        sync_on, woo, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1", stock=10)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    link_all(wc)
    receive("A-1", shop_location, 10)
    first = woo.place_order(lines=[("A-1", 1)], status="pending")
    woo.place_order(lines=[("A-1", 1)], status="pending")
    assert orders_import(store=wc).orders == 2
    woo.set_order_status(first, "processing")  # the same second as the cursor: strictly-after alone would miss it
    assert orders_import(store=wc).orders == 1
    assert ImportedOrder.objects.get(external_id=str(first["id"])).status == "open"
    assert orders_import(store=wc).orders == 0
    assert _on_hand("A-1") == Decimal(9) == woo.stock("A-1") + 0


def test_the_cursor_stays_before_an_order_that_cannot_be_applied_and_takes_it_next_time(
        sync_on, woo, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1", stock=10)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    link_all(wc)
    good = woo.place_order(lines=[("A-1", 1)])
    woo.advance(1)
    broken = woo.place_order(lines=[("A-1", 1)])
    broken["line_items"][0]["id"] = "x" * 200  # a line id longer than we store: the order's transaction fails
    woo.advance(1)
    woo.place_order(lines=[("A-1", 1)])
    result = orders_import(store=wc)
    assert len(result.failures) == 1 and result.failures[0].startswith(f"{broken['id']}: ")
    wc.refresh_from_db()
    cursor = OrderCursor.load(wc.order_cursor)
    assert cursor.modified_at.isoformat()[:19] == good["date_modified_gmt"]
    assert set(cursor.seen) == {str(good["id"])}
    assert ImportedOrder.objects.count() == 1 and wc.last_order_import_at is None
    # once the store's record is readable, the next run takes it and the one after it
    broken["line_items"][0]["id"] = 77
    assert orders_import(store=wc).orders == 2
    assert ImportedOrder.objects.count() == 3 and StockMove.objects.filter(kind="order").count() == 3


def test_a_cursor_saved_before_the_shared_rule_is_read_on(sync_on, woo, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1", stock=10)
    old = woo.place_order(lines=[("A-1", 1)])
    woo.advance(5)
    new = woo.place_order(lines=[("A-1", 1)])
    # the old rule kept the newest modification seen; it is where the new one starts (less its overlap)
    seen_up_to = datetime.fromisoformat(old["date_modified_gmt"] + "+00:00") + timedelta(seconds=3)
    wc = make_woo_store(woo, location=shop_location, import_orders=True,
                        order_cursor={"modified_after": seen_up_to.isoformat()})
    link_all(wc)
    orders_import(store=wc)
    assert list(ImportedOrder.objects.values_list("external_id", flat=True)) == [str(new["id"])]


def test_an_import_stopped_by_an_order_is_a_failed_run_naming_it(sync_on, woo, shop_location):
    from carts.jobs import orders_import_job
    from posinv.models import JobRun

    articles("A-1")
    woo.add_product(sku="A-1", stock=10)
    wc = make_woo_store(woo, location=shop_location, import_orders=True)
    broken = woo.place_order(lines=[("A-1", 1)])
    broken["line_items"][0]["id"] = "x" * 200
    orders_import_job(store_id=wc.pk)
    run = JobRun.objects.get(name="cart_orders_import")
    assert run.status == "failed"
    assert run.error.startswith(f"store woo: 1 orders could not be "
                                f"applied, the import will start from the first of them again next run: "
                                f"{broken['id']}: ")
