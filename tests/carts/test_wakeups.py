"""How the controller is woken: after commit, at most one waiting sweep per
store (RQ on Redis), and a periodic sweep for anything a wake-up missed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carts.models import StackEntry
from carts.schedules import carts_due
from posinv.scheduling import dues_now
from posinv.services.changes import changes_dispatch
from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive


@pytest.mark.redis
def test_a_committed_change_wakes_one_sweep_per_store_however_many_changes(
        sync_on, shopify, woo, shop_location, rq_mode, django_capture_on_commit_callbacks):
    import django_rq

    articles("A-1", "B-2")
    for sku in ("A-1", "B-2"):
        shopify.add_variant(sku=sku)
        woo.add_product(sku=sku)
    shop = make_shopify_store(shopify, location=shop_location)
    wc = make_woo_store(woo, location=shop_location)
    link_all(shop)
    link_all(wc)
    queue = django_rq.get_queue("high")
    queue.empty()
    for n in range(3):
        stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"k{n}", sku="A-1",
                                         location_id=shop_location.pk, quantity=1)],
                         origin=StockOrigin("user", "clerk"))
        with django_capture_on_commit_callbacks(execute=True):
            changes_dispatch()
    sweeps = sorted(job.kwargs["kwargs"]["store_id"] for job in queue.get_jobs()
                    if job.kwargs.get("func_path") == "carts.jobs.stack_sweep_job")
    assert sweeps == [shop.pk, wc.pk]
    assert StackEntry.objects.filter(state="waiting").count() == 6


def due_keys(now) -> list[str]:
    """What the scheduler would run at `now`: the carts' schedules through the one due-time rule."""
    return [due.key for due in dues_now(carts_due(now=now), now=now)]


def test_the_periodic_sweep_offers_stores_with_due_entries_and_order_imports_by_interval(
        sync_on, shopify, woo, shop_location):
    articles("A-1")
    shopify.add_variant(sku="A-1")
    woo.add_product(sku="A-1")
    shop = make_shopify_store(shopify, location=shop_location, import_orders=True, order_interval_seconds=60)
    wc = make_woo_store(woo, location=shop_location)
    link_all(shop)
    link_all(wc)
    receive("A-1", shop_location, 2)
    now = timezone.now()
    # the Woo entry is backing off for a minute; the Shopify one is due
    StackEntry.objects.filter(store=wc).update(next_attempt_at=now + timedelta(seconds=60))
    assert due_keys(now) == [f"stack-sweep:{shop.pk}", "cart-orders:shopify"]
    # after an import the next one waits for the interval
    type(shop).objects.filter(pk=shop.pk).update(last_order_import_at=now)
    StackEntry.objects.update(state="sent")
    assert due_keys(now + timedelta(seconds=30)) == []
    # a worker killed while sending: its entries are offered again once the claim lease is over
    StackEntry.objects.filter(store=wc).update(state="sending", updated_at=now)
    assert due_keys(now + timedelta(seconds=61)) == [f"stack-sweep:{wc.pk}", "cart-orders:shopify"]
