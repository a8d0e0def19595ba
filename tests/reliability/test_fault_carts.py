"""Carts that are down for minutes (issue #11), with the production backoff
settings (the defaults of CartSettings: base 1 s, cap 300 s, 8 attempts),
two real rqworker processes and the scheduler feeding three fake carts over
real HTTP while sales keep moving stock: the Shopify fake answers 429 with
Retry-After, a WooCommerce fake answers 500/502/503, and another holds every
answer past the connector's 10 s timeout (each write applied, the outcome
unknown to us), each for OUTAGE_SECONDS. The fast tests below pin the
controller's backoff rules that the long run depends on."""
from __future__ import annotations

import math
import random
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from carts.connectors.woocommerce import WooCommerceConnector
from carts.models import CartSettings, StackEntry
from carts.services.qoh import qoh_reconcile
from carts.services.stack import stack_retry, stack_sweep
from posinv.models import StockLevel, StockMove
from posinv.selectors import ledger_drift
from posinv.services.changes import changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.factories import make_article, make_location
from tests.fakes.shopify import FakeShopify
from tests.fakes.woocommerce import FakeWooCommerce
from tests.support.carts import (
    Cart,
    attempts_within,
    cart_worker_env,
    cart_workers,
    carts_link,
    carts_match,
    longest_backoff,
    mismatches,
    shopify_store,
    stack_settled,
    woo_store,
)
from tests.support.processes import wait_until

OUTAGE_SECONDS = 120  # issue #11: "for minutes"
RETRY_AFTER = 5  # seconds, the Shopify fake's Retry-After while it throttles
WORKERS = 2
SELLERS = [f"F-{n:02}" for n in range(10)]  # sold all along
SLOW_MOVER = "F-10"  # sold once as the outage starts, then never: if the 5xx cart gives it up, only Retry helps
SKUS = [*SELLERS, SLOW_MOVER]
OPENING = 500
# Beyond the longest backoff: a scheduler tick (2 s), a sweep, and a loaded 2-core machine.
SLACK_SECONDS = 30


def _sale_batch(rng: random.Random, batch: int, web) -> list[MoveSpec]:
    return [MoveSpec(kind="sale", idempotency_key=f"out:{batch}:{line}", sku=rng.choice(SELLERS),
                     location_id=web.pk, quantity=Decimal(-rng.randint(1, 3))) for line in range(5)]


def _stranded(store) -> set[str]:
    """SKUs whose newest entry for `store` was given up: nothing will send them again by itself."""
    newest = {}
    for sku, state in StackEntry.objects.filter(store=store).order_by("pk").values_list("article__sku", "state"):
        newest[sku] = state
    return {sku for sku, state in newest.items() if state == StackEntry.State.FAILED}


def _wear_out(store, sku: str, params: CartSettings) -> int:
    """Leave the product's entry one attempt from giving up, as if it had been failing before the outage, once
    it waits out a backoff of a few seconds (so no worker holds it). Returns how many entries it changed."""
    return StackEntry.objects.filter(
        store=store, article__sku=sku, state=StackEntry.State.WAITING, attempts__gte=3,
        next_attempt_at__gt=timezone.now() + timedelta(seconds=2),
    ).update(attempts=params.max_attempts - 1)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.xdist_group("cart-workers")
def test_carts_throttling_failing_or_timing_out_for_minutes_converge_to_the_ledger(transactional_db, rq_mode):
    # given the production backoff settings and three carts on the web warehouse
    params = CartSettings.objects.create(pk=1, synch_qoh=True)
    assert (params.backoff_base_seconds, params.backoff_cap_seconds, params.max_attempts) == (1.0, 300.0, 8)
    web = make_location(code="WEB", kind="warehouse")
    for sku in SKUS:
        make_article(sku=sku)
    timeout = WooCommerceConnector.timeout
    with FakeShopify() as shopify, FakeWooCommerce() as failing, FakeWooCommerce() as slow:
        for sku in SKUS:
            shopify.add_variant(sku=sku)
            failing.add_product(sku=sku)
            slow.add_product(sku=sku)
        throttled = Cart(shopify_store(shopify, code="shop-429", locations=[web]), shopify)
        erring = Cart(woo_store(failing, code="woo-5xx", locations=[web]), failing)
        hanging = Cart(woo_store(slow, code="woo-timeout", locations=[web]), slow)
        carts = [throttled, erring, hanging]
        carts_link(carts, skus=SKUS)
        with cart_workers(env=cart_worker_env(), prefix="outage", count=WORKERS):
            stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"out-init:{sku}", sku=sku,
                                             location_id=web.pk, quantity=Decimal(OPENING)) for sku in SKUS],
                             origin=StockOrigin("user", "clerk"))
            wait_until(lambda: carts_match(carts, SKUS), timeout=90, interval=0.5,
                       message="the carts to take the opening stock")

            # when each cart misbehaves for two minutes while the registers keep selling
            started = time.monotonic()
            shopify.throttle_for(OUTAGE_SECONDS + 60, retry_after=RETRY_AFTER)
            failing.faults.error_rate = 1.0
            slow.faults.latency = timeout + 1
            rng = random.Random(11)
            sold: Counter[str] = Counter()
            posted = batch = 0
            worn_out = 0
            while time.monotonic() - started < OUTAGE_SECONDS:
                if not worn_out:
                    worn_out = _wear_out(erring.store, SLOW_MOVER, params)
                moves = _sale_batch(rng, batch, web)
                if batch == 0:
                    moves.append(MoveSpec(kind="sale", idempotency_key="out:slow", sku=SLOW_MOVER,
                                          location_id=web.pk, quantity=Decimal(-1)))
                stock_moves_post(moves=moves, origin=StockOrigin("register", "R1"))
                if batch % 10 == 0:  # a register resending a batch it got no answer for
                    stock_moves_post(moves=moves, origin=StockOrigin("register", "R1"))
                for move in moves:
                    sold[move.sku] -= int(move.quantity)
                posted += len(moves)
                batch += 1
                time.sleep(1)
            given_up_meanwhile = set(StackEntry.objects.filter(state="failed").values_list("store__code", flat=True))
            ended = time.monotonic()
            shopify.throttle_for(0)
            failing.faults.error_rate = 0.0
            slow.faults.latency = 0.0
            for extra in range(3):  # and the tills go on after the carts are back
                moves = _sale_batch(rng, batch + extra, web)
                stock_moves_post(moves=moves, origin=StockOrigin("register", "R1"))
                for move in moves:
                    sold[move.sku] -= int(move.quantity)
                posted += len(moves)

            # then every entry is sent (or, at the 5xx cart, given up) within the longest backoff
            bound = longest_backoff(params) + SLACK_SECONDS
            wait_until(stack_settled, timeout=bound, interval=0.5,
                       message=f"every stack entry to be sent within {bound:.0f} s of the outage's end")
            settled_after = time.monotonic() - ended
            stranded = _stranded(erring.store)
            # the worn-out product was given up, so the Retry path below always runs
            assert worn_out == 1 and SLOW_MOVER in stranded
            given_up = StackEntry.objects.filter(store=erring.store, state="failed").count()
            wrong = mismatches(carts, SKUS)
            # only products whose entries the 5xx cart gave up may still differ, and the reconcile report
            # names exactly those; the admin's Retry of the failed entries brings them back
            assert {(code, sku) for code, sku, _, _ in wrong} <= {("woo-5xx", sku) for sku in stranded}
            assert sorted(row["sku"] for row in qoh_reconcile(store=erring.store)) == sorted(
                sku for code, sku, _, _ in wrong)
            stack_retry(entry_ids=StackEntry.objects.filter(store=erring.store, state="failed")
                        .values_list("pk", flat=True))
            wait_until(lambda: carts_match(carts, SKUS), timeout=SLACK_SECONDS, interval=0.5,
                       message=f"carts to match the ledger after Retry: {mismatches(carts, SKUS)}")

    # the throttled and the hanging cart gave nothing up: throttling never costs an attempt, and a
    # call held past the timeout takes its time from the backoff schedule
    assert given_up_meanwhile <= {"woo-5xx"}
    assert not StackEntry.objects.filter(store__in=[throttled.store, hanging.store], state="failed").exists()
    assert mismatches(carts, SKUS) == []
    # backoff really backs off: the 429 cart was called at most once per worker per Retry-After,
    # the others at most as often per product as the shortest backoff schedule allows
    calls_429 = shopify.calls_between(started, ended)
    assert 1 <= len(calls_429) <= WORKERS * (math.ceil(OUTAGE_SECONDS / RETRY_AFTER) + 1)
    assert {call.status for call in calls_429} == {429}
    for fake, call_seconds in ((failing, 0.0), (slow, timeout)):
        limit = attempts_within(OUTAGE_SECONDS, params, call_seconds=call_seconds)
        per_product = {sku: len(fake.calls_between(started, ended, sku=sku)) for sku in SKUS}
        assert max(per_product.values()) <= limit, (fake.url, per_product, limit)
        assert min(per_product.values()) >= 1
    assert {call.status for call in failing.calls_between(started, ended)} <= {500, 502, 503}
    assert slow.holds and any(started <= at < ended for at, _, _ in slow.holds)  # writes applied, answered late
    # every sale moved stock exactly once, and the ledger holds
    assert StockMove.objects.filter(idempotency_key__startswith="out:").count() == posted
    levels = dict(StockLevel.objects.filter(location=web).values_list("article__sku", "on_hand"))
    assert levels == {sku: Decimal(OPENING - sold[sku]) for sku in SKUS}
    assert list(ledger_drift()) == []
    call_command("verify_ledger")
    during = {cart.store.code: len(cart.fake.calls_between(started, ended)) for cart in carts}
    print(f"outage {ended - started:.0f} s, {posted} sale moves; calls during it {during}; settled "
          f"{settled_after:.0f} s after it; the 5xx cart gave up {given_up} entries, {len(stranded)} products "
          f"stranded until Retry")


# -- the backoff rules the long run relies on (fast, in-process) ---------------------------------

def _woo_cart(woo: FakeWooCommerce, web) -> Cart:
    cart = Cart(woo_store(woo, code="woo", locations=[web]), woo)
    carts_link([cart], skus=["F-00"])
    return cart


@contextmanager
def _failing_cart(**settings):
    """A WooCommerce cart answering only 5xx for product F-00 at warehouse WEB, 30 s backoff base."""
    CartSettings.objects.create(pk=1, synch_qoh=True, backoff_base_seconds=30, **settings)
    web = make_location(code="WEB", kind="warehouse")
    article = make_article(sku="F-00")
    with FakeWooCommerce() as woo:
        woo.add_product(sku="F-00")
        cart = _woo_cart(woo, web)
        woo.faults.error_rate = 1.0
        yield woo, cart, web, article


def _sell(web, *, key: str, quantity: int) -> None:
    kind = "receipt" if quantity > 0 else "sale"
    stock_moves_post(moves=[MoveSpec(kind=kind, idempotency_key=key, sku="F-00", location_id=web.pk,
                                     quantity=Decimal(quantity))], origin=StockOrigin("register", "R1"))
    changes_dispatch()


def test_sales_while_a_product_backs_off_neither_call_the_cart_nor_spend_attempts(db):
    # given a cart that answers 5xx, and a product backing off after its first error
    with _failing_cart() as (woo, cart, web, _):
        _sell(web, key="in", quantity=50)
        stack_sweep(store_id=cart.store.pk, time_budget=0.1)
        first = StackEntry.objects.get()
        assert (first.state, first.attempts) == ("waiting", 1)
        # when five sales follow during the backoff, each waking a sweep
        for n in range(5):
            _sell(web, key=f"sale:{n}", quantity=-1)
            stack_sweep(store_id=cart.store.pk, time_budget=0.1)
        # then the cart was not called again, and no entry spent an attempt
        assert woo.count(method="POST") == 1
        assert list(StackEntry.objects.order_by("pk").values_list("state", "attempts", "next_attempt_at")) == [
            ("waiting", 1, first.next_attempt_at)] + [("waiting", 0, first.next_attempt_at)] * 5
        # and once the wait is over, one call carries the newest figure
        woo.faults.error_rate = 0.0
        StackEntry.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        stack_sweep(store_id=cart.store.pk, time_budget=0.1)
        assert woo.count(method="POST") == 2
        assert woo.stock("F-00") == 45
        assert set(StackEntry.objects.values_list("state", flat=True)) == {"sent"}


def test_an_entry_queued_while_its_product_is_in_flight_waits_with_it_when_the_call_fails(transactional_db):
    # given a cart that answers 5xx, and a sale queued while the first call is on the wire
    with _failing_cart() as (woo, cart, web, article):

        def queue_a_sale_meanwhile(request):
            if request.method == "POST" and not StackEntry.objects.filter(origin_code="R2").exists():
                StackEntry.objects.create(store=cart.store, article=article, quantity=49, origin="register",
                                          origin_code="R2", next_attempt_at=timezone.now())
            connection.close()  # the fake's thread must not keep a connection to the test database

        woo.on_request = queue_a_sale_meanwhile
        # when the receipt is swept (inline, after its commit) and the call fails
        _sell(web, key="in", quantity=50)
        # then the entry queued meanwhile waits with the product: no second call
        first, meanwhile = StackEntry.objects.order_by("pk")
        assert meanwhile.origin_code == "R2"
        assert woo.count(method="POST") == 1
        assert (first.state, first.attempts) == ("waiting", 1)
        assert (meanwhile.state, meanwhile.attempts, meanwhile.next_attempt_at) == (
            "waiting", 0, first.next_attempt_at)


def test_entries_surviving_a_give_up_wait_their_own_backoff_not_the_given_up_ones(db):
    # given a product whose old entry has one attempt left, and a newer entry
    with _failing_cart(max_attempts=8) as (woo, cart, web, _):
        _sell(web, key="in", quantity=50)
        old = StackEntry.objects.get()
        StackEntry.objects.filter(pk=old.pk).update(attempts=7)
        _sell(web, key="sale", quantity=-1)
        # when the cart fails the product once more
        stack_sweep(store_id=cart.store.pk, time_budget=0.1)
        # then the old entry is given up and the newer one waits its first backoff (30 s × 0.5–1.5),
        # not the given-up entry's eighth (30 s × 2^7, capped at 300 s)
        old.refresh_from_db()
        newer = StackEntry.objects.exclude(pk=old.pk).get()
        assert (old.state, old.attempts) == ("failed", 8)
        assert (newer.state, newer.attempts) == ("waiting", 1)
        assert 15 <= (newer.next_attempt_at - newer.updated_at).total_seconds() <= 45
