"""Product links, Send QOH, Get QOH and the reconcile report."""
from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from carts.models import ProductLink, StackEntry
from carts.services.links import links_match
from carts.services.qoh import qoh_get, qoh_reconcile, qoh_send
from posinv.exceptions import InvalidInput
from posinv.models import StockLevel, StockMove
from tests.carts.conftest import articles, link_all, make_shopify_store, make_woo_store, receive
from tests.factories import make_barcode, make_location, valid_ean13


def test_matching_links_by_sku_then_barcode_and_reports_the_rest(sync_on, woo, shop_location):
    a1, b2, _, d4 = articles("A-1", "B-2", "C-3", "D-4")
    code = valid_ean13("871234567890")
    make_barcode(article=b2, code=code)
    woo.add_product(sku="A-1")
    woo.add_product(sku="", barcode=code)            # B-2 by barcode
    woo.add_product(sku="ZZ-9")                      # not ours
    woo.add_product(sku="D-4")
    woo.add_product(sku="D-4")                       # two store products share a SKU
    woo.add_variable(name="Shirt", skus={"A-1-XL": 3})
    wc = make_woo_store(woo, location=shop_location)
    report = links_match(store=wc)
    assert report["counts"] == {"matched": 2, "missing_here": 2, "missing_there": 2, "ambiguous": 2}
    assert sorted((m["sku"], m["by"]) for m in report["matched"]) == [("A-1", "sku"), ("B-2", "barcode")]
    assert report["missing_there"] == ["C-3", "D-4"]
    assert sorted(m["sku"] for m in report["missing_here"]) == ["A-1-XL", "ZZ-9"]
    assert {a["reason"] for a in report["ambiguous"]} == {"2 store products share this SKU"}
    assert sorted(ProductLink.objects.values_list("article__sku", "matched_by")) == [("A-1", "sku"),
                                                                                     ("B-2", "barcode")]


def test_send_qoh_pushes_every_linked_product_with_progress(sync_on, woo, shop_location):
    skus = [f"S-{n}" for n in range(5)]
    articles(*skus)
    for sku in skus:
        woo.add_product(sku=sku, stock=99)
    wc = make_woo_store(woo, location=shop_location, safety_buffer=1)
    link_all(wc)
    for n, sku in enumerate(skus):
        receive(sku, shop_location, n + 1)
    StackEntry.objects.all().delete()
    seen = []
    result = qoh_send(store=wc, progress=lambda done, total: seen.append((done, total)))
    assert [woo.stock(sku) for sku in skus] == [0, 1, 2, 3, 4]
    assert (result.queued, result.sent, result.waiting, result.failed) == (5, 5, 0, 0)
    assert seen[-1] == (5, 5)
    assert woo.batch_sizes == [5]


def test_get_qoh_posts_counts_so_available_equals_the_store_and_reaches_other_carts(
        sync_on, woo, shopify, shop_location):
    articles("A-1", "B-2")
    woo.add_product(sku="A-1", stock=12)
    woo.add_product(sku="B-2", stock=3)
    shopify.add_variant(sku="A-1")
    wc = make_woo_store(woo, location=shop_location, safety_buffer=2)
    shop = make_shopify_store(shopify, location=shop_location)
    link_all(wc)
    link_all(shop)
    receive("A-1", shop_location, 5)
    receive("B-2", shop_location, 5)
    StackEntry.objects.all().delete()
    result = qoh_get(store=wc)
    from posinv.services.changes import changes_dispatch
    changes_dispatch()
    # then on hand = store quantity + buffer, as counts from the store
    levels = dict(StockLevel.objects.values_list("article__sku", "on_hand"))
    assert levels == {"A-1": Decimal(14), "B-2": Decimal(5)}
    assert (result.read, result.counted, result.unchanged) == (2, 1, 1)
    move = StockMove.objects.get(kind="count")
    assert (move.origin, move.origin_code, move.counted) == ("store", "woo", Decimal(14))
    assert qoh_reconcile(store=wc) == []
    # the other cart hears of it; the source cart (no compare-and-set) gets its own figure back, which changes nothing
    assert sorted(StackEntry.objects.values_list("store__code", "quantity")) == [("shopify", 14), ("woo", 12)]


def test_get_qoh_holds_a_pull_that_zeroes_most_products_until_confirmed(sync_on, woo, shop_location):
    skus = [f"Z-{n}" for n in range(4)]
    articles(*skus)
    for sku in skus:
        woo.add_product(sku=sku, stock=0)
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    for sku in skus:
        receive(sku, shop_location, 7)
    with pytest.raises(InvalidInput, match="4 of 4 products would drop to zero"):
        qoh_get(store=wc)
    assert StockMove.objects.filter(kind="count").count() == 0
    with pytest.raises(CommandError, match="would drop to zero"):
        call_command("carts_get_qoh", "woo", stdout=StringIO())
    out = StringIO()
    call_command("carts_get_qoh", "woo", "--confirm", stdout=out)
    assert out.getvalue().strip() == "woo: read 4, counted 4, unchanged 0"
    assert set(StockLevel.objects.values_list("on_hand", flat=True)) == {Decimal(0)}


def test_reconcile_lists_where_store_and_ledger_disagree(sync_on, woo, shop_location):
    articles("A-1", "B-2")
    woo.add_product(sku="A-1", stock=4)
    woo.add_product(sku="B-2", stock=9)
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    receive("A-1", shop_location, 4)
    receive("B-2", shop_location, 6)
    assert qoh_reconcile(store=wc) == [{"sku": "B-2", "ref": ProductLink.objects.get(article__sku="B-2").remote_ref,
                                        "ledger": 6, "store": 9, "difference": 3}]
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("carts_reconcile", "woo", stdout=out)
    assert exit_info.value.code == 1
    assert out.getvalue().splitlines()[-1] == "woo: 1 products disagree"


def test_commands_refuse_an_unknown_store_with_a_message(db):
    with pytest.raises(CommandError, match="no store 'nope' \\(known: none\\)"):
        call_command("carts_send_qoh", "nope")


def test_link_command_prints_the_report(sync_on, woo, shop_location):
    articles("A-1")
    woo.add_product(sku="A-1")
    woo.add_product(sku="X-1")
    make_woo_store(woo, location=shop_location)
    out = StringIO()
    call_command("carts_link_products", "woo", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "woo: matched 1, missing here 1, missing on the store 0, ambiguous 0"
    assert lines[1].startswith("  no article for p:") and "(sku 'X-1'" in lines[1]


def test_relinking_after_a_product_left_the_store_unlinks_it_and_discards_its_entries(sync_on, woo, shop_location):
    articles("A-1", "B-2")
    woo.add_product(sku="A-1")
    gone = woo.add_product(sku="B-2")
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    woo.throttle_for(60)
    receive("B-2", shop_location, 2)
    del woo.products[gone["id"]]
    woo.throttle_for(0)
    report = links_match(store=wc)
    assert report["missing_there"] == ["B-2"]
    assert list(ProductLink.objects.values_list("article__sku", flat=True)) == ["A-1"]
    assert list(StackEntry.objects.values_list("state", "last_response")) == [("discarded", "product no longer linked")]


@pytest.fixture
def two_location_store(sync_on, woo, shop_location):
    """WooCommerce sells the web warehouse (its order location) and a shop:
    A-1 has 2 at WEB and 6 at SHOP (8 to sell), B-2 has 1 and 1."""
    shop = make_location(code="SHOP", name="High street", kind="store")
    articles("A-1", "B-2")
    woo.add_product(sku="A-1", stock=3)
    woo.add_product(sku="B-2", stock=7)
    wc = make_woo_store(woo, location=shop_location, order_location=shop_location)
    wc.locations.add(shop)
    link_all(wc)
    receive("A-1", shop_location, 2)
    receive("A-1", shop, 6)
    receive("B-2", shop_location, 1, key="rcv:B-2:web")
    receive("B-2", shop, 1, key="rcv:B-2:shop")
    return wc, shop


def _levels() -> dict:
    return {(sku, code): on_hand for sku, code, on_hand in
            StockLevel.objects.values_list("article__sku", "location__code", "on_hand")}


def test_get_qoh_with_several_locations_refuses_a_drop_the_order_location_cannot_take(two_location_store):
    wc, _ = two_location_store
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("carts_get_qoh", "woo", stdout=out, stderr=err)
    assert exit_info.value.code == 1
    assert out.getvalue().strip() == "woo: read 2, counted 1, unchanged 0, refused 1"
    assert err.getvalue().strip() == (
        "refused A-1: the store shows 3; reaching it takes 5 off, but the order location WEB holds 2 (other "
        "locations: SHOP 6); count those locations, or run again with --take-from-other-locations")
    # nothing clamped: A-1 is as it was, B-2 (an increase) went to the order location
    assert _levels() == {("A-1", "WEB"): 2, ("A-1", "SHOP"): 6, ("B-2", "WEB"): 6, ("B-2", "SHOP"): 1}
    assert [row["sku"] for row in qoh_reconcile(store=wc)] == ["A-1"]


def test_get_qoh_can_take_the_rest_of_a_drop_from_the_other_locations(two_location_store):
    wc, _ = two_location_store
    out = StringIO()
    call_command("carts_get_qoh", "woo", "--take-from-other-locations", stdout=out, stderr=StringIO())
    assert out.getvalue().splitlines() == ["woo: read 2, counted 2, unchanged 0",
                                           "  taken partly from other locations: A-1"]
    # the order location gives all it has, the shop the rest
    assert _levels() == {("A-1", "WEB"): 0, ("A-1", "SHOP"): 3, ("B-2", "WEB"): 6, ("B-2", "SHOP"): 1}
    assert qoh_reconcile(store=wc) == []
    assert set(StockMove.objects.filter(kind="count").values_list("origin", "origin_code")) == {("store", "woo")}


def test_send_qoh_to_a_failing_store_says_what_failed_and_what_still_waits(sync_on, woo, shop_location):
    skus = ["F-1", "F-2"]
    articles(*skus)
    for sku in skus:
        woo.add_product(sku=sku, stock=9)
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    woo.faults.error_rate = 1.0  # every call a 5xx
    # quick backoff (the fixture): three attempts, then failed
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("carts_send_qoh", "woo", "--wait", "60", stdout=out, stderr=err)
    assert exit_info.value.code == 1
    assert out.getvalue().strip().startswith("woo: queued 2, sent 0, failed 2, still in flight 0,")
    assert "2 products failed: see the web stack's failed entries" in err.getvalue()
    # a long backoff: the command does not sit through it, it reports the products in flight
    sync_on.backoff_base_seconds = 60
    sync_on.backoff_cap_seconds = 60
    sync_on.save()
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit):
        call_command("carts_send_qoh", "woo", "--wait", "60", stdout=out, stderr=err)
    assert out.getvalue().strip().startswith("woo: queued 2, sent 0, failed 0, still in flight 2,")
    assert "2 products are still in flight (waiting for a retry after an error" in err.getvalue()
    assert "the next retry is due at " in err.getvalue()


def test_the_get_qoh_admin_action_warns_of_every_refused_product(two_location_store, client, staff_user):
    from tests.carts.test_admin import _admin

    wc, _ = two_location_store
    client = _admin(client, staff_user)
    answer = client.post("/admin/carts/externalstore/", {"action": "get_qoh", "_selected_action": [wc.pk]},
                         follow=True)
    body = answer.content.decode()
    assert "Get QOH read 2, counted 1, unchanged 0, refused 1" in body
    assert ("Get QOH refused A-1: the store shows 3; reaching it takes 5 off, but the order location WEB holds 2 "
            "(other locations: SHOP 6)") in body
    assert 'class="warning"' in body
