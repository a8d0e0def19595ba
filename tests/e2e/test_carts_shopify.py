"""Shopify against its documented limits, end to end: real `rqworker`
processes and the scheduler on PostgreSQL and Redis, real HTTP to the strict
fake Shopify (query cost from the parsed query, the single-query maximum of
1,000 points, the cost bucket, compare-and-set):

- a 20,000-variant catalogue is matched and sent, paced by the bucket;
- an import of many orders with many line items reaches the ledger exactly once;
- a stale compare-and-set is resolved (the web order imported, the figure re-read);
- a throttled Shopify cart does not stall a WooCommerce change with one worker.

The fake's restore rate is raised where the test is not about waiting, so
the tests stay bounded; the pacing code runs all the same."""
from __future__ import annotations

import os
import time
from decimal import Decimal

import pytest
from django.db.models import Count

from carts.connectors.shopify import variants_cost
from carts.models import CartSettings, ExternalStore, ImportedOrderLine, ProductLink, StackEntry
from carts.services.links import links_match
from posinv.models import Article, StockMove
from posinv.queueing import enqueue
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.support.carts import Cart, cart_worker_env, cart_workers, carts_link, mismatches, shopify_store, woo_store
from tests.support.processes import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.xdist_group("cart-workers")]

CLERK = StockOrigin("user", "clerk")


def test_a_20000_variant_catalogue_is_matched_and_sent_paced_by_the_cost_bucket(transactional_db, rq_mode):
    # given 20,000 articles and a shop with one variant each, whose bucket
    # (1,000 points) restores 25,000 points a second: listing costs ~100,700
    # points, so the listing waits for the bucket about 130 times
    CartSettings.objects.create(pk=1, synch_qoh=False, max_attempts=8, claim_seconds=30)
    web = make_location(code="WEB", kind="warehouse")
    count = int(os.environ.get("POSINV_E2E_SHOPIFY_VARIANTS", "20000"))
    skus = [f"C-{n:05}" for n in range(count)]
    Article.objects.bulk_create([Article(sku=sku, name=sku) for sku in skus], batch_size=2000)
    with FakeShopify(cost_capacity=1000, restore_rate=25_000) as shopify:
        for n, sku in enumerate(skus):
            shopify.add_variant(sku=sku, available=n % 7)
        store = shopify_store(shopify, code="big", locations=[web])
        # when the products are matched
        report = links_match(store=store)
        assert report["counts"]["matched"] == count
        assert shopify.over_cost_answers == 0
        listing_points = shopify.points_spent
        assert listing_points == -(-count // 150) * variants_cost(150)  # pages of 150 variants, 752 points each
        # and each product gets stock, then Send QOH runs in a worker while
        # the bucket restores only 400 points a second
        stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"in:{sku}", sku=sku, location_id=web.pk,
                                         quantity=Decimal(n % 50 + 1)) for n, sku in enumerate(skus)], origin=CLERK)
        shopify.restore_rate = 400
        shopify.drain_bucket(to=100)
        with cart_workers(env=cart_worker_env(POSINV_SCHEDULER_TICK_SECONDS="0.5"), prefix="shq", count=1) as (w,):
            enqueue("carts.jobs.qoh_send_job", queue="default", store_id=store.pk)
            try:
                wait_until(lambda: shopify.set_calls >= count // 250 and not StackEntry.objects.filter(
                    state__in=["waiting", "sending"]).exists(), timeout=90, interval=0.5,
                    message="Send QOH to finish")
            except AssertionError as exc:
                states = dict(StackEntry.objects.values_list("state").annotate(n=Count("pk")))
                raise AssertionError(f"{exc}; entries {states}, {shopify.set_calls} mutations, "
                                     f"{shopify.throttled_answers} THROTTLED; worker log:\n{w.log()}") from None
    # then Shopify shows every product's figure, sent in full batches, never over the bucket's limit for long
    wrong = [sku for n, sku in enumerate(skus) if shopify.by_sku(sku).available != n % 50 + 1]
    assert wrong == []
    assert StackEntry.objects.filter(state="sent").count() == count
    assert StackEntry.objects.filter(state="failed").count() == 0
    assert shopify.over_cost_answers == 0
    assert shopify.set_calls == count // 250  # 80 calls of 250 quantities, 10 points each


def test_an_import_of_many_orders_and_line_items_reaches_the_ledger_exactly_once(transactional_db, rq_mode):
    # given a shop with 120 orders, some with hundreds of line items, imported every second by the scheduler
    CartSettings.objects.create(pk=1, synch_qoh=False)
    web = make_location(code="WEB", kind="warehouse")
    skus = [f"O-{n:02}" for n in range(50)]
    for sku in skus:
        make_article(sku=sku)
    with FakeShopify(restore_rate=5000) as shopify:
        for sku in skus:
            shopify.add_variant(sku=sku, available=10_000)
        for k in range(120):
            lines = 300 if k % 40 == 0 else k % 12 + 1
            shopify.place_order(lines=[(skus[(k + n) % 50], 1 + n % 3) for n in range(lines)])
        store = shopify_store(shopify, code="ord", locations=[web])
        ExternalStore.objects.filter(pk=store.pk).update(import_orders=True, order_interval_seconds=1,
                                                         order_location=web)
        expected_lines = sum(len(o.lines) for o in shopify.orders)
        sold = sum(ln["quantity"] for o in shopify.orders for ln in o.lines)
        with cart_workers(env=cart_worker_env(POSINV_SCHEDULER_TICK_SECONDS="0.5"), prefix="sho", count=1):
            wait_until(lambda: ImportedOrderLine.objects.filter(state="posted").count() == expected_lines,
                       timeout=60, interval=0.5, message="every line to be posted")
            first = ExternalStore.objects.get(pk=store.pk).last_order_import_at
            # and the import runs again (overlapping cursor) twice more
            wait_until(lambda: (ExternalStore.objects.get(pk=store.pk).last_order_import_at - first).total_seconds()
                       >= 2, timeout=20, interval=0.3, message="two more imports")
    # then each line moved stock exactly once
    assert ImportedOrderLine.objects.count() == expected_lines
    assert -sum(m.quantity for m in StockMove.objects.filter(kind="order")) == sold
    assert shopify.over_cost_answers == 0
    assert shopify.count(status=200) > 0


def test_a_stale_compare_and_set_is_resolved_by_importing_the_order_and_re_reading(transactional_db, rq_mode):
    # given a linked Shopify cart showing 10, whose orders are imported only hourly
    CartSettings.objects.create(pk=1, synch_qoh=True, backoff_base_seconds=0.2, backoff_cap_seconds=1)
    web = make_location(code="WEB", kind="warehouse")
    make_article(sku="S-1")
    with FakeShopify(restore_rate=2000) as shopify:
        shopify.add_variant(sku="S-1", available=10)
        store = shopify_store(shopify, code="st", locations=[web])
        ExternalStore.objects.filter(pk=store.pk).update(import_orders=True, order_interval_seconds=3600,
                                                         order_location=web)
        stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key="init", sku="S-1", location_id=web.pk,
                                         counted=Decimal(10))], origin=CLERK)
        carts = [Cart(store, shopify)]
        carts_link(carts, skus=["S-1"])
        with cart_workers(env=cart_worker_env(POSINV_SCHEDULER_TICK_SECONDS="0.5"), prefix="shs", count=1):
            wait_until(lambda: not StackEntry.objects.filter(state__in=["waiting", "sending"]).exists(),
                       timeout=20, message="the first figure to be sent")
            ExternalStore.objects.filter(pk=store.pk).update(last_order_import_at=store.created_at.replace(
                year=2100))  # no scheduled import until the test ends
            # when the shop sells 3 on the web and a register sells 2 before the order is imported
            shopify.place_order(lines=[("S-1", 3)])
            stock_moves_post(moves=[MoveSpec(kind="sale", idempotency_key="R1:1", sku="S-1", location_id=web.pk,
                                             quantity=Decimal(-2))], origin=StockOrigin("register", "R1"))
            # then the stale answer imports the order, re-reads 7 and sends 10 - 3 - 2
            wait_until(lambda: shopify.available("S-1") == 5 and not StackEntry.objects.filter(
                state__in=["waiting", "sending"]).exists(), timeout=30, message="Shopify to show 5")
    assert shopify.stale_answers == 1
    assert StockMove.objects.filter(kind="order").count() == 1
    assert mismatches(carts, ["S-1"]) == []
    assert not ProductLink.objects.get().outcome_unknown


def test_a_throttled_shopify_cart_does_not_stall_a_woocommerce_change_with_one_worker(transactional_db, rq_mode):
    # given 600 products on a Shopify cart and one of them also on WooCommerce, one worker
    CartSettings.objects.create(pk=1, synch_qoh=True, backoff_base_seconds=0.2, backoff_cap_seconds=1)
    web = make_location(code="WEB", kind="warehouse")
    skus = [f"T-{n:03}" for n in range(600)]
    Article.objects.bulk_create([Article(sku=sku, name=sku) for sku in skus])
    with FakeShopify(restore_rate=5000) as shopify, FakeWooCommerce() as woo:
        for sku in skus:
            shopify.add_variant(sku=sku)
        woo.add_product(sku=skus[0])
        shop, wc = shopify_store(shopify, code="thr", locations=[web]), woo_store(woo, code="woo", locations=[web])
        links_match(store=shop)
        carts_link([Cart(wc, woo)], skus=[skus[0]])
        shopify.restore_rate = 50  # the documented standard plan from here on
        # and another app on the shop keeps its cost bucket empty for 8 seconds
        until = time.monotonic() + 3600

        def other_app_spends(request):
            if time.monotonic() < until:
                shopify.drain_bucket()

        shopify.on_request = other_app_spends
        with cart_workers(env=cart_worker_env(POSINV_SCHEDULER_TICK_SECONDS="0.5"), prefix="sht", count=1):
            until = time.monotonic() + 8
            stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"in:{sku}", sku=sku,
                                             location_id=web.pk, quantity=Decimal(4)) for sku in skus], origin=CLERK)
            wait_until(lambda: shopify.throttled_answers > 0, timeout=10, interval=0.05,
                       message="Shopify to throttle")
            # when a register sells one of the shared product while Shopify throttles
            stock_moves_post(moves=[MoveSpec(kind="sale", idempotency_key="R1:1", sku=skus[0], location_id=web.pk,
                                             quantity=Decimal(-1))], origin=StockOrigin("register", "R1"))
            # then WooCommerce has the figure while Shopify is still throttling
            wait_until(lambda: woo.stock(skus[0]) == 3, timeout=6, interval=0.05, message="WooCommerce to show 3")
            assert time.monotonic() < until, "WooCommerce waited for the throttled Shopify cart"
            # and Shopify catches up once its bucket refills, without failing anything
            wait_until(lambda: not StackEntry.objects.filter(state__in=["waiting", "sending"]).exists(),
                       timeout=60, interval=0.5, message="Shopify to catch up")
    assert mismatches([Cart(shop, shopify)], skus) == []
    assert StackEntry.objects.filter(state="failed").count() == 0
