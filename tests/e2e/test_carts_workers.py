"""Two real `rqworker` processes, a real scheduler process and two carts
(fake Shopify and fake WooCommerce on real HTTP) on PostgreSQL and Redis:
1,000 register and cabinet moves end with each cart showing exactly the
ledger's available-to-sell, although one worker is killed mid-batch and one
cart answers 429 for a while (and both answer an occasional 5xx)."""
from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest

from carts.models import CartSettings, ExternalStore, ProductLink, StackEntry
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.support.carts import (
    SKUS,
    Cart,
    cart_worker_env,
    cart_workers,
    carts_link,
    carts_match,
    mismatches,
    shopify_store,
    woo_store,
)
from tests.support.processes import started_worker, wait_until

# Both start real workers and a scheduler on the 2-core CI machine: never side by side
# with tests/reliability/test_fault_carts.py.
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.xdist_group("cart-workers")]


def _carts(shopify: FakeShopify, woo: FakeWooCommerce, web, cab) -> list[Cart]:
    """Shopify sells the web warehouse and the cabinet, WooCommerce the web warehouse."""
    return [Cart(shopify_store(shopify, code="shop", locations=[web, cab]), shopify),
            Cart(woo_store(woo, code="woo", locations=[web]), woo)]


def _holding_pid() -> int | None:
    token = (ProductLink.objects.filter(claim_token__contains=":").values_list("claim_token", flat=True).first())
    return int(token.split(":")[0]) if token else None


def _kill_a_worker_holding_a_claim(workers, web):
    """SIGKILL the worker that holds claimed products right now; if the
    workers are idle, give them one more sale to work on and look again."""
    for attempt in range(40):
        try:
            pid = wait_until(_holding_pid, timeout=1, interval=0.005, message="a claim in flight")
        except AssertionError:
            stock_moves_post(moves=[MoveSpec(kind="sale", idempotency_key=f"nudge:{attempt}", sku=SKUS[attempt % 20],
                                             location_id=web.pk, quantity=Decimal(-1))],
                             origin=StockOrigin("register", "R9"))
            continue
        worker = next(w for w in workers if w.pid == pid)
        worker.kill_hard()
        return worker
    raise AssertionError("no worker ever held a claim")


def test_1000_register_and_cabinet_moves_reach_both_carts_exactly_despite_a_killed_worker_and_429s(
        transactional_db, rq_mode, settings):
    # given two carts linked by SKU, SynchQOH on, a short claim lease
    CartSettings.objects.create(pk=1, synch_qoh=True, max_attempts=50, backoff_base_seconds=0.2,
                                backoff_cap_seconds=2, claim_seconds=3)
    web = make_location(code="WEB", kind="warehouse")
    cab = make_location(code="CAB1", kind="cabinet")
    for sku in SKUS:
        make_article(sku=sku)
    with FakeShopify(cost_capacity=400, restore_rate=200) as shopify, FakeWooCommerce() as woo:
        for sku in SKUS:
            shopify.add_variant(sku=sku)
            woo.add_product(sku=sku)
        carts = _carts(shopify, woo, web, cab)
        carts_link(carts, skus=SKUS)
        shopify.faults.latency = woo.faults.latency = 0.02
        shopify.faults.error_rate = woo.faults.error_rate = 0.08  # occasional 5xx all along
        env = cart_worker_env(POSINV_CHANGES_SWEEP_SECONDS="2", POSINV_SCHEDULER_TICK_SECONDS="0.5")
        with cart_workers(env=env, prefix="carts") as (w1, w2):
            stock_moves_post(moves=[
                MoveSpec(kind="receipt", idempotency_key=f"init:{sku}", sku=sku, location_id=web.pk,
                         quantity=Decimal(500)) for sku in SKUS
            ], origin=StockOrigin("user", "clerk"))
            rng = random.Random(6)
            killed = None
            for batch in range(100):
                moves = []
                for line in range(10):
                    n = batch * 10 + line
                    sku = rng.choice(SKUS)
                    if n % 10 < 7:  # register sales at the web warehouse
                        moves.append(MoveSpec(kind="sale", idempotency_key=f"R{n % 3}:{n}", sku=sku,
                                              location_id=web.pk, quantity=Decimal(-rng.randint(1, 3))))
                    else:  # cabinet readings: absolute counts
                        moves.append(MoveSpec(kind="count", idempotency_key=f"CAB1:{n}", sku=sku,
                                              location_id=cab.pk, counted=Decimal(rng.randint(0, 40))))
                origin = StockOrigin("register", "R1") if batch % 2 else StockOrigin("cabinet", "CAB1")
                stock_moves_post(moves=moves, origin=origin)
                if batch == 40:
                    # when a worker is killed while it holds claimed products
                    killed = _kill_a_worker_holding_a_claim((w1, w2), web)
                if batch == 60:
                    # and the WooCommerce host answers 429 for three seconds
                    woo.throttle_for(3, retry_after=1)
                time.sleep(0.05)
            # then everything arrives, exactly
            wait_until(lambda: carts_match(carts, SKUS), timeout=120, interval=0.5,
                       message=f"carts to match the ledger: {mismatches(carts, SKUS)}")
            survivor = w2 if killed is w1 else w1
            assert survivor.alive() and not killed.alive()
    assert mismatches(carts, SKUS) == []
    assert StackEntry.objects.filter(state="failed").count() == 0
    assert woo.count(status=429) > 0
    assert sum(fake.count(status=status) for fake in (shopify, woo) for status in (500, 502, 503)) > 0
    sent = StackEntry.objects.filter(state="sent").count()
    # coalescing: far fewer quantity writes than entries
    assert shopify.set_calls + woo.batch_calls < sent


def test_an_order_pushed_by_shopify_over_http_moves_stock_once_and_reaches_the_other_cart(
        transactional_db, rq_mode):
    import base64
    import hashlib
    import hmac
    import json

    import requests

    from carts.models import ImportedOrder
    from posinv.models import StockLevel
    from tests.support.processes import started_server

    # given a posinv server, a worker, and two linked carts holding 10
    CartSettings.objects.create(pk=1, synch_qoh=True)
    web = make_location(code="WEB", kind="warehouse")
    cab = make_location(code="CAB1", kind="cabinet")
    make_article(sku="E-00")
    with FakeShopify() as shopify, FakeWooCommerce() as woo:
        shopify.add_variant(sku="E-00", available=10)
        woo.add_product(sku="E-00", stock=10)
        carts = _carts(shopify, woo, web, cab)
        shop, wc = (cart.store for cart in carts)
        ExternalStore.objects.filter(pk=shop.pk).update(import_orders=True, order_location=web, secrets={
            "access_token": shopify.token, "webhook_secret": "whsec"})
        carts_link(carts, skus=["E-00"])
        stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key="init", sku="E-00", location_id=web.pk,
                                         counted=Decimal(10))], origin=StockOrigin("user", "clerk"))
        env = cart_worker_env()
        with started_server(env=env, migrate=False) as url, started_worker(env=env, name="carts-w1"):
            # when Shopify sells 3 and pushes the order twice (a webhook retry)
            order = shopify.place_order(lines=[("E-00", 3)])
            body = json.dumps(shopify.order_webhook_body(order)).encode()
            signature = base64.b64encode(hmac.new(b"whsec", body, hashlib.sha256).digest()).decode()
            for _ in range(2):
                answer = requests.post(f"{url}/api/v1/carts/shop/webhook/", data=body, timeout=10, headers={
                    "Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature})
                assert answer.status_code == 200, answer.text
            # then stock moved once and WooCommerce follows; the order is not sent back to Shopify
            wait_until(lambda: woo.stock("E-00") == 7, timeout=10, message="WooCommerce to show 7")
    assert StockLevel.objects.get(location=web).on_hand == Decimal(7)
    assert ImportedOrder.objects.get().lines.get().state == "posted"
    assert shopify.available("E-00") == 7
    assert not StackEntry.objects.filter(store=shop, origin="store").exists()  # never echoed back
    assert list(StackEntry.objects.filter(store=wc, origin="store").values_list("origin_code", "sent_quantity")) == [
        ("shop", 7)]
