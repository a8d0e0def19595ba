"""The web stack and the stack controller against the fake Shopify and
WooCommerce servers (real HTTP on 127.0.0.1)."""
from __future__ import annotations

import time

from carts.models import CartSettings, ProductLink, StackEntry
from carts.services.stack import stack_claim, stack_discard, stack_retry, stack_sweep
from posinv.services.changes import changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, post, receive


def test_a_register_sale_reaches_every_synchronized_cart_with_the_new_available_quantity(
        sync_on, shopify, woo, shop_location):
    # given two carts selling the web warehouse, both linked by SKU
    articles("A-1", "B-2")
    shopify.add_variant(sku="A-1", available=0)
    shopify.add_variant(sku="B-2", available=0)
    woo.add_product(sku="A-1", stock=0)
    woo.add_product(sku="B-2", stock=0)
    shop = make_shopify_store(shopify, location=shop_location)
    wc = make_woo_store(woo, location=shop_location, safety_buffer=2)
    link_all(shop)
    link_all(wc)
    receive("A-1", shop_location, 10)
    # when a register sells 3
    post("A-1", shop_location, quantity=-3, key="R1:1:1")
    stack_sweep(store_id=shop.pk)
    stack_sweep(store_id=wc.pk)
    # then each cart shows on hand minus its buffer; B-2 never changed and was not sent
    assert shopify.available("A-1") == 7
    assert woo.stock("A-1") == 5
    assert shopify.available("B-2") == 0
    assert list(StackEntry.objects.filter(store=shop).values_list("quantity", "state")) == [(10, "sent"), (7, "sent")]
    assert set(StackEntry.objects.filter(store=shop).values_list("sent_quantity", flat=True)) == {7}


def test_a_change_from_a_cart_is_never_sent_back_to_that_cart(sync_on, shopify, woo, shop_location):
    articles("A-1")
    shopify.add_variant(sku="A-1")
    woo.add_product(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    wc = make_woo_store(woo, location=shop_location)
    link_all(shop)
    link_all(wc)
    # when the Shopify store's own order import moves stock
    post("A-1", shop_location, kind="receipt", quantity=5, key="k1", origin=StockOrigin("store", "shopify"))
    # then only the other cart gets an entry
    assert StackEntry.objects.filter(store=shop).count() == 0
    assert list(StackEntry.objects.filter(store=wc).values_list("quantity", "origin", "origin_code")) == [
        (5, "store", "shopify")]


def test_nothing_is_queued_while_synch_qoh_is_off_or_for_unlinked_articles(sync_on, shopify, shop_location):
    articles("A-1", "NOT-THERE")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    post("NOT-THERE", shop_location, kind="receipt", quantity=4, key="k0")
    CartSettings.objects.filter(pk=1).update(synch_qoh=False)
    post("A-1", shop_location, kind="receipt", quantity=4, key="k1")
    assert StackEntry.objects.count() == 0


def test_many_changes_of_one_product_coalesce_into_one_send_of_the_newest_quantity(sync_on, shopify, shop_location):
    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    receive("A-1", shop_location, 50)
    for n in range(10):
        post("A-1", shop_location, quantity=-1, key=f"R1:{n}")
    result = stack_sweep(store_id=shop.pk)
    assert shopify.available("A-1") == 40
    assert shopify.set_calls == 1
    assert result.sent == 1 and result.settled_entries == 11
    assert StackEntry.objects.filter(store=shop).exclude(state="sent").count() == 0


def test_woocommerce_batches_hold_at_most_100_items(sync_on, woo, shop_location):
    skus = [f"W-{n:03}" for n in range(230)]
    articles(*skus)
    for sku in skus:
        woo.add_product(sku=sku, stock=0)
    wc = make_woo_store(woo, location=shop_location)
    report = link_all(wc)
    assert report["counts"]["matched"] == 230
    # one goods receipt of 230 lines
    stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"gr-1:{sku}", sku=sku,
                                     location_id=shop_location.pk, quantity=3) for sku in skus],
                     origin=StockOrigin("user", "clerk"))
    changes_dispatch()
    stack_sweep(store_id=wc.pk)
    assert woo.batch_sizes == [100, 100, 30]
    assert {woo.stock(sku) for sku in skus} == {3}


def test_a_stale_compare_and_set_imports_the_web_order_recomputes_and_resends(sync_on, shopify, woo, shop_location):
    # given both carts show 10
    articles("A-1")
    shopify.add_variant(sku="A-1")
    woo.add_product(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    wc = make_woo_store(woo, location=shop_location)
    link_all(shop)
    link_all(wc)
    receive("A-1", shop_location, 10)
    stack_sweep(store_id=shop.pk)
    stack_sweep(store_id=wc.pk)
    assert shopify.available("A-1") == 10
    # when Shopify sells 2 on the web (not yet imported) and a register sells 1
    shopify.place_order(lines=[("A-1", 2)])
    post("A-1", shop_location, quantity=-1, key="R1:9")
    stack_sweep(store_id=shop.pk)
    # then the stale answer made us import the order and send 10-2-1
    assert shopify.stale_answers == 1
    assert shopify.available("A-1") == 7
    assert StackEntry.objects.get(store=shop, state="sent", quantity=9).sent_quantity == 7
    # and the imported order reaches the other cart
    stack_sweep(store_id=wc.pk)
    assert woo.stock("A-1") == 7


def test_a_cart_answering_429_keeps_entries_waiting_without_attempts_and_catches_up(sync_on, woo, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1")
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    woo.throttle_for(0.6, retry_after=0.3)
    receive("A-1", shop_location, 8)
    stack_sweep(store_id=wc.pk, time_budget=0.2)
    entry = StackEntry.objects.get(store=wc)
    assert (entry.state, entry.attempts) == ("waiting", 0)
    assert entry.last_response.startswith("HTTP 429")
    assert woo.stock("A-1") == 0
    time.sleep(0.7)
    stack_sweep(store_id=wc.pk)
    entry.refresh_from_db()
    assert (entry.state, entry.sent_quantity, woo.stock("A-1")) == ("sent", 8, 8)


def test_server_errors_back_off_and_fail_after_max_attempts_keeping_the_last_response(sync_on, woo, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1")
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    woo.faults.error_rate = 1.0
    CartSettings.objects.filter(pk=1).update(backoff_base_seconds=30, backoff_cap_seconds=600)
    receive("A-1", shop_location, 8)
    stack_sweep(store_id=wc.pk, time_budget=0.1)
    entry = StackEntry.objects.get(store=wc)
    assert (entry.state, entry.attempts) == ("waiting", 1)
    assert entry.last_response.startswith("HTTP 50")
    assert 15 <= (entry.next_attempt_at - entry.updated_at).total_seconds() <= 45  # 30 s with jitter
    for _ in range(2):
        StackEntry.objects.filter(pk=entry.pk).update(next_attempt_at=entry.created_at)
        stack_sweep(store_id=wc.pk, time_budget=0.1)
    entry.refresh_from_db()
    assert (entry.state, entry.attempts) == ("failed", 3)
    assert "Internal Server Error" in entry.last_response
    assert woo.stock("A-1") == 0
    # the admin's retry puts it back; the cart has recovered
    woo.faults.error_rate = 0.0
    assert stack_retry(entry_ids=[entry.pk]) == 1
    stack_sweep(store_id=wc.pk)
    entry.refresh_from_db()
    assert (entry.state, woo.stock("A-1")) == ("sent", 8)


def test_a_timeout_is_an_unknown_outcome_read_back_before_sending_again(sync_on, shopify, shop_location):
    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    shopify.faults.slow_writes = 1
    shopify.faults.slow_seconds = 1.5
    receive("A-1", shop_location, 6)
    from carts.connectors.shopify import ShopifyConnector
    ShopifyConnector.timeout = 0.5
    try:
        stack_sweep(store_id=shop.pk, time_budget=0.1)
        entry = StackEntry.objects.get(store=shop)
        assert (entry.state, entry.attempts) == ("waiting", 1)
        assert entry.last_response.startswith("unknown outcome")
        assert ProductLink.objects.get(store=shop).outcome_unknown is True
        # the write had landed; the next sweep reads back and does not send again
        StackEntry.objects.filter(pk=entry.pk).update(next_attempt_at=entry.created_at)
        result = stack_sweep(store_id=shop.pk)
    finally:
        ShopifyConnector.timeout = 10.0
    entry.refresh_from_db()
    assert (entry.state, entry.sent_quantity) == ("sent", 6)
    assert result.readbacks == 1 and result.sent == 0
    assert shopify.set_calls == 1
    assert ProductLink.objects.get(store=shop).outcome_unknown is False


def test_two_workers_claim_disjoint_products(sync_on, shopify, shop_location):
    articles("A-1", "B-2", "C-3")
    for sku in ("A-1", "B-2", "C-3"):
        shopify.add_variant(sku=sku)
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    for sku in ("A-1", "B-2", "C-3"):
        receive(sku, shop_location, 1)
    first = stack_claim(store=shop, limit=2, claim_seconds=30)
    second = stack_claim(store=shop, limit=2, claim_seconds=30)
    third = stack_claim(store=shop, limit=2, claim_seconds=30)
    assert [link.article.sku for link in first.links] == ["A-1", "B-2"]
    assert [link.article.sku for link in second.links] == ["C-3"]
    assert third is None
    assert StackEntry.objects.filter(state="sending").count() == 3


def test_discard_drops_waiting_entries_only(sync_on, shopify, shop_location):
    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    receive("A-1", shop_location, 1)
    entry = StackEntry.objects.get()
    assert stack_discard(entry_ids=[entry.pk]) == 1
    stack_sweep(store_id=shop.pk)
    assert StackEntry.objects.get().state == "discarded"
    assert shopify.available("A-1") == 0


def test_a_product_whose_claim_lease_ran_out_is_not_sent_by_the_late_worker(sync_on, shopify, shop_location):
    from carts.services.stack import SweepResult, _send_claim
    from carts.services.stores import store_connector

    articles("A-1")
    shopify.add_variant(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(shop)
    receive("A-1", shop_location, 4)
    claim = stack_claim(store=shop, limit=10, claim_seconds=5)
    # while this worker was slow, its lease ran out and another worker took the product
    ProductLink.objects.update(claim_token="999:other")
    claim.renewed_at = 0
    _send_claim(shop, store_connector(store=shop), claim, CartSettings.objects.get(), SweepResult())
    assert shopify.set_calls == 0
    assert list(StackEntry.objects.values_list("state", flat=True)) == ["sending"]
    assert ProductLink.objects.get().claim_token == "999:other"
