"""WooCommerce end to end: real `rqworker` processes on PostgreSQL and Redis,
the fake WooCommerce (and a fake Shopify) over real HTTP.

- An order import run by a worker while the shop changes orders under it
  (a cancellation of an order on page 1, a new order) loses nothing and
  doubles nothing, and both carts end equal to the ledger.
- `carts_send_qoh` tells the truth while workers send part of the products:
  it follows its own entries to their real outcome."""
from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from rq import Worker

from carts.models import CartSettings, ExternalStore, ImportedOrder
from posinv.models import JobRun, StockLevel, StockMove
from posinv.queueing import enqueue
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.support.carts import (
    Cart,
    cart_worker_env,
    carts_link,
    carts_match,
    mismatches,
    shopify_store,
    woo_store,
)
from tests.support.processes import started_worker, wait_until

# Real workers on the 2-core CI machine: never side by side with the other worker tests.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.xdist_group("cart-workers")]


def _count(sku: str, location, quantity: int) -> None:
    stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key=f"init:{sku}", sku=sku, location_id=location.pk,
                                     counted=Decimal(quantity))], origin=StockOrigin("user", "clerk"))


def test_a_woo_import_paging_while_the_shop_changes_orders_loses_nothing_and_doubles_nothing(
        transactional_db, rq_mode):
    settings = CartSettings.objects.create(pk=1, synch_qoh=False)
    web = make_location(code="WEB", kind="warehouse")
    make_article(sku="E-00")
    _count("E-00", web, 1000)
    with FakeWooCommerce() as woo, FakeShopify() as shopify:
        woo.add_product(sku="E-00", stock=1000)
        shopify.add_variant(sku="E-00", available=1000)
        carts = [Cart(woo_store(woo, code="woo", locations=[web]), woo),
                 Cart(shopify_store(shopify, code="shop", locations=[web]), shopify)]
        wc = carts[0].store
        ExternalStore.objects.filter(pk=wc.pk).update(import_orders=True)
        carts_link(carts, skus=["E-00"])
        settings.synch_qoh = True
        settings.save()
        orders = []
        for n in range(250):  # three pages of orders, ten a second, all paid (Woo took the stock)
            if n % 10 == 0:
                woo.advance(1)
            orders.append(woo.place_order(lines=[("E-00", 1)]))
        reads = []

        def meanwhile(request):
            if request.method == "GET" and request.path.endswith("/orders"):
                reads.append(dict(request.query))
                if len(reads) == 2:  # while the worker reads on, the shop cancels an order of page 1 ...
                    woo.advance(1)
                    woo.set_order_status(orders[5], "cancelled")
                    woo.advance(2)  # ... and takes a later one
                    orders.append(woo.place_order(lines=[("E-00", 2)]))
                    woo.set_order_status(orders[7], "completed")

        woo.on_request = meanwhile
        env = cart_worker_env()
        with started_worker(env=env, name="woo-w1"), started_worker(env=env, name="woo-w2"):
            enqueue("carts.jobs.orders_import_job", store_id=wc.pk)
            wait_until(lambda: JobRun.objects.filter(name="cart_orders_import", status__in=["succeeded", "failed"])
                       .exists(), timeout=60, message="the import job to finish")
            run = JobRun.objects.get(name="cart_orders_import")
            assert (run.status, run.counts["failures"]) == ("succeeded", [])
            try:
                wait_until(lambda: carts_match(carts, ["E-00"]), timeout=30, message="both carts to show the ledger")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: (store, sku, cart, ledger) {mismatches(carts, ['E-00'])}") from None
            # a second run finds nothing new
            enqueue("carts.jobs.orders_import_job", store_id=wc.pk)
            wait_until(lambda: JobRun.objects.filter(name="cart_orders_import").count() == 2
                       and not JobRun.objects.filter(status="running").exists(), timeout=60,
                       message="the second import to finish")
        woo.on_request = None
    assert len(reads) > 3  # it paged, and the changes happened while it did
    second = JobRun.objects.filter(name="cart_orders_import").order_by("-pk").first()
    assert (second.status, second.counts["orders"]) == ("succeeded", 0)
    assert ImportedOrder.objects.count() == 251
    cancelled = ImportedOrder.objects.get(external_id=str(orders[5]["id"]))
    assert (cancelled.status, cancelled.lines.get().state) == ("cancelled", "returned")
    assert StockMove.objects.filter(kind="order").count() == 251
    assert StockMove.objects.filter(kind="return").count() == 1
    on_hand = StockLevel.objects.get(location=web).on_hand
    assert on_hand == Decimal(1000 - 250 - 2 + 1)
    assert woo.stock("E-00") == shopify.available("E-00") == int(on_hand)


def test_send_qoh_reports_what_was_really_sent_while_workers_send_part_of_it(transactional_db, rq_mode):
    settings = CartSettings.objects.create(pk=1, synch_qoh=False, claim_seconds=30)
    web = make_location(code="WEB", kind="warehouse")
    skus = [f"Q-{n:03}" for n in range(250)]
    with FakeWooCommerce() as woo:
        for n, sku in enumerate(skus):
            make_article(sku=sku)
            _count(sku, web, n % 7)
            woo.add_product(sku=sku, stock=99)
        cart = Cart(woo_store(woo, code="woo", locations=[web]), woo)
        carts_link([cart], skus=skus)
        settings.synch_qoh = True
        settings.save()
        woo.faults.latency = 0.4  # every call takes a while, so workers hold claims while we sweep
        env = cart_worker_env()
        with started_worker(env=env, name="qoh-w1"), started_worker(env=env, name="qoh-w2"):
            wait_until(lambda: len(Worker.all(connection=rq_mode)) == 2, timeout=30, message="both workers to listen")
            out = StringIO()
            call_command("carts_send_qoh", "woo", "--wait", "60", stdout=out, stderr=StringIO())
        summary = out.getvalue().strip()
        ours = int(summary.rsplit(" ", 1)[1])
        assert summary == f"woo: queued 250, sent 250, failed 0, still in flight 0, HTTP calls by this command {ours}"
        # and it is true: every product shows our figure, in three batches, some sent by the workers
        assert [woo.stock(sku) for sku in skus] == [n % 7 for n in range(250)]
        assert all(size <= 100 for size in woo.batch_sizes)
        assert ours < woo.count("POST", "/batch")
