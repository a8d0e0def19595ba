"""The Shopify connector against the strict fake (tests/fakes/shopify.py):
every query within the single-query maximum, nested line items paged, bulk
reads paced by the cost bucket, the chosen API version's mutation, and a
stale compare-and-set resolved by re-reading the product and importing its
orders, across sweeps too."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest

from carts.connectors.base import PermanentError, QuantityUpdate
from carts.connectors.shopify import ShopifyConnector
from carts.models import ImportedOrderLine, ProductLink, StackEntry
from carts.services.orders import orders_import
from carts.services.stack import stack_sweep
from carts.services.stores import store_connector, store_validate
from posinv.exceptions import InvalidInput
from posinv.models import StockLevel, StockMove
from tests.carts.conftest import articles, link_all, make_shopify_store, post, receive
from tests.fakes.shopify import LOCATION, FakeShopify


def _connector(fake: FakeShopify, **params) -> ShopifyConnector:
    return ShopifyConnector(url=fake.url, params={"location_id": LOCATION, **params},
                            secrets={"access_token": fake.token})


@pytest.fixture
def quick_shop():
    """A shop on a large plan (restoring 5,000 points a second): the tests are not about pacing."""
    with FakeShopify(restore_rate=5000) as fake:
        yield fake


def test_orders_with_many_line_items_are_read_whole_within_the_single_query_maximum(quick_shop):
    shopify = quick_shop
    for n in range(40):
        shopify.add_variant(sku=f"L-{n:02}", available=100)
    small = [shopify.place_order(lines=[(f"L-{n % 40:02}", 1) for n in range(k, k + 3)]) for k in range(25)]
    big = shopify.place_order(lines=[(f"L-{n:02}", 2) for n in range(40)] * 8)  # 320 line items
    connector = _connector(shopify)
    orders, page = [], 0
    while True:
        page += 1
        read = connector.fetch_orders_page(since=None, page=page)
        orders.extend(read.orders)
        if not read.more:
            break
    assert shopify.over_cost_answers == 0
    assert [o.external_id for o in orders] == [f"gid://shopify/Order/{o.id}" for o in [*small, big]]
    assert [len(o.lines) for o in orders] == [3] * 25 + [320]
    assert len({line.line_id for line in orders[-1].lines}) == 320
    assert orders[-1].updated_at == big.updated_at


def test_listing_waits_for_the_cost_bucket_instead_of_raising():
    # given a shop whose bucket another app has just emptied, restoring 3,000 points a second
    with FakeShopify(cost_capacity=1000, restore_rate=3000) as fake:
        for n in range(900):
            fake.add_variant(sku=f"V-{n:03}", available=n)
        fake.drain_bucket()
        connector = _connector(fake)
        products = list(connector.list_products())
    # then every variant is listed (6 pages of 752 points), paced by the bucket
    assert [p.sku for p in products] == [f"V-{n:03}" for n in range(900)]
    assert fake.over_cost_answers == 0
    # only the first call, before any answer told us the bucket's state, earns THROTTLED
    assert (fake.count(status=200) - fake.throttled_answers, fake.throttled_answers) == (6, 1)
    assert connector.slept > 0


def test_get_qoh_reads_waits_for_the_bucket_too():
    with FakeShopify(cost_capacity=800, restore_rate=4000) as fake:
        refs = [fake.add_variant(sku=f"V-{n:03}", available=n).item_gid for n in range(600)]
        fake.drain_bucket()
        found = _connector(fake).fetch_quantities(refs)  # 3 chunks of 250 items at 750 points each
    assert found == {ref: n for n, ref in enumerate(refs)}
    assert fake.over_cost_answers == 0


@pytest.mark.parametrize("version", ["2025-10", "2026-01"])
def test_versions_before_2026_04_push_with_compare_quantity(shopify, version):
    a = shopify.add_variant(sku="A", available=5).item_gid
    b = shopify.add_variant(sku="B", available=7).item_gid
    connector = _connector(shopify, api_version=version)
    assert [o.status for o in connector.push_quantities([QuantityUpdate(a, 4, expected=5),
                                                        QuantityUpdate(b, 3, expected=None)])] == ["ok", "ok"]
    assert (shopify.available("A"), shopify.available("B")) == (4, 3)
    assert [o.status for o in connector.push_quantities([QuantityUpdate(a, 1, expected=9)])] == ["stale"]
    assert shopify.available("A") == 4


def test_an_unsupported_version_is_refused_with_the_supported_ones(shopify, db, shop_location):
    with pytest.raises(PermanentError, match="2024-01 is not supported; choose one of 2025-10, 2026-01"):
        list(_connector(shopify, api_version="2024-01").list_products())
    store = make_shopify_store(shopify, location=shop_location, api_version="2025-07")
    with pytest.raises(InvalidInput) as refused:
        store_validate(store=store)
    assert refused.value.problems[0].field == "api_version"
    store.api_version = "2026-01"
    store_validate(store=store)
    assert store_connector(store=store).endpoint().endswith("/admin/api/2026-01/graphql.json")


def test_an_order_import_of_many_orders_and_lines_reaches_the_ledger_exactly_once(quick_shop, db, shop_location):
    shopify = quick_shop
    skus = [f"O-{n:02}" for n in range(30)]
    articles(*skus)
    for sku in skus:
        shopify.add_variant(sku=sku, available=1000)
    store = make_shopify_store(shopify, location=shop_location, import_orders=True)
    for k in range(45):
        shopify.place_order(lines=[(skus[(k + n) % 30], 1) for n in range(k % 15 + 1)])
    shopify.place_order(lines=[(sku, 3) for sku in skus] * 2)  # 60 line items
    expected = 45 * 8 + 60  # lines
    assert orders_import(store=store).orders == 46
    orders_import(store=store)  # the cursor's overlap fetches the newest again
    store.order_cursor = {}
    store.save()
    orders_import(store=store)  # and from the start: nothing moves twice
    assert ImportedOrderLine.objects.filter(order__store=store, state="posted").count() == expected
    sold = sum(-m.quantity for m in StockMove.objects.filter(kind="order"))
    assert sold == sum(ln["quantity"] for o in shopify.orders for ln in o.lines) == 45 * 8 + 180
    assert sum(level.on_hand for level in StockLevel.objects.all()) == -sold
    assert shopify.over_cost_answers == 0


def test_a_stale_answer_whose_order_import_failed_is_re_read_and_imported_by_the_next_sweep(
        sync_on, quick_shop, shop_location):
    shopify = quick_shop
    # given Shopify shows 10
    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    receive("A-1", shop_location, 10)
    stack_sweep(store_id=shop.pk)
    assert shopify.available("A-1") == 10
    # when a web order sells 2 (not imported), a register sells 1, and the
    # order import after the stale answer fails once (Shopify answers 503)
    shopify.place_order(lines=[("A-1", 2)])
    post("A-1", shop_location, quantity=-1, key="R1:1")
    failing = {"left": 1}

    def fail_orders_once(request):
        if b"orders(" in request.body and failing["left"]:
            failing["left"] -= 1
            shopify.faults.error_rate, shopify.faults.rng.random = 1.0, lambda: 0.0
        else:
            shopify.faults.error_rate = 0.0

    shopify.on_request = fail_orders_once
    stack_sweep(store_id=shop.pk, time_budget=0.01)  # one batch
    # then nothing was overwritten: the product waits, marked to be read again
    assert shopify.available("A-1") == 8
    link = ProductLink.objects.get(store=shop)
    assert link.outcome_unknown
    entry = StackEntry.objects.get(store=shop, quantity=9)
    assert (entry.state, entry.attempts) == ("waiting", 1)
    # and the next sweep reads the product again, imports its order and sends 10-2-1 against 8
    StackEntry.objects.filter(pk=entry.pk).update(next_attempt_at=entry.created_at)
    stack_sweep(store_id=shop.pk)
    assert shopify.available("A-1") == 7
    assert shopify.stale_answers == 1
    assert StackEntry.objects.get(pk=entry.pk).state == "sent"
    assert StockMove.objects.filter(kind="order").count() == 1


def test_a_merchant_edit_is_read_before_it_is_replaced_by_the_ledgers_figure(sync_on, quick_shop, shop_location):
    shopify = quick_shop
    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    receive("A-1", shop_location, 10)
    stack_sweep(store_id=shop.pk)
    # when the merchant sets 50 in the Shopify admin and a register sells 1
    shopify.set_available("A-1", 50)
    post("A-1", shop_location, quantity=-1, key="R1:1")
    stack_sweep(store_id=shop.pk)
    # then the stale base was re-read (50), orders imported (none), and the ledger's 9 set against 50
    assert shopify.stale_answers == 1
    assert shopify.available("A-1") == 9
    assert StackEntry.objects.get(store=shop, quantity=9).last_response == "ok: set 9 (from 50)"
    assert Decimal(StockLevel.objects.get().on_hand) == 9


def test_a_throttled_import_in_a_worker_ends_its_run_and_the_next_goes_on_from_the_cursor(
        db, shop_location, settings):
    # A worker sleeps no longer than POSINV_RATE_INLINE_WAIT_SECONDS on one
    # shop's bucket (other stores need it): the import stops at the throttled
    # page with what it committed, and the next run goes on from there,
    # nothing imported twice.
    settings.POSINV_RATE_INLINE_WAIT_SECONDS = 0.05
    with FakeShopify(cost_capacity=1000, restore_rate=1000) as shopify:
        articles("T-1")
        shopify.add_variant(sku="T-1", available=1000)
        store = make_shopify_store(shopify, location=shop_location, import_orders=True)
        for _ in range(25):
            shopify.place_order(lines=[("T-1", 1)])
        shopify.drain_bucket(to=300)  # room for one page of orders (232 points), not two

        first = orders_import(store=store, wait_for_limits=False)

        assert first.throttled_for is not None and first.orders < 25  # ended, did not sleep
        imported, runs = first.orders, 1
        while runs < 10:
            time.sleep(1.0)  # the next scheduled run: the bucket has refilled meanwhile
            later = orders_import(store=store, wait_for_limits=False)
            imported, runs = imported + later.orders, runs + 1
            if later.throttled_for is None:
                break
        assert imported == 25
        assert -sum(m.quantity for m in StockMove.objects.filter(kind="order")) == 25


def test_a_bucket_smaller_than_a_page_shrinks_the_pages_instead_of_waiting_for_ever():
    # given a shop whose whole bucket (400 points) is less than a page of variants (752) or of levels (750)
    with FakeShopify(cost_capacity=400, restore_rate=20000) as fake:
        refs = [fake.add_variant(sku=f"V-{n:03}", available=n).item_gid for n in range(300)]
        connector = _connector(fake)
        products = list(connector.list_products())
        found = connector.fetch_quantities(refs)
    # then everything is read in pages that fit: only the first page, sent
    # before any answer told us the bucket's size, was answered THROTTLED
    assert [p.quantity for p in products] == list(range(300))
    assert found == {ref: n for n, ref in enumerate(refs)}
    assert (fake.over_cost_answers, fake.throttled_answers) == (0, 1)
