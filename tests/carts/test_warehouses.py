"""Issue 7: external stores and wholesalers as superior or inferior
warehouses (seed 004), against the fake BaseLinker-style API and the fake
wholesaler feed."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from carts.connectors.base import ConnectorError
from carts.models import ExternalStore, StackEntry
from carts.schedules import carts_due
from carts.services.links import links_match
from carts.services.stack import stack_sweep
from carts.services.warehouses import store_directions_validate, store_price_run, store_stock_run
from posinv.exceptions import InvalidInput
from posinv.models import Price, PriceGroup, StockLevel, StockMove
from posinv.services.changes import changes_dispatch
from tests.carts.conftest import articles, link_all, make_woo_store, receive
from tests.factories import make_location
from tests.fakes.baselinker import FakeBaseLinker
from tests.fakes.wholesaler import FakeWholesaler

D = ExternalStore.Direction


@pytest.fixture
def baselinker():
    with FakeBaseLinker() as fake:
        yield fake


@pytest.fixture
def wholesaler():
    with FakeWholesaler() as fake:
        yield fake


@pytest.fixture
def warehouse(db):
    return make_location(code="WH1", name="Main warehouse", kind="warehouse")


def bl_store(fake: FakeBaseLinker, *, code: str = "bl", **extra) -> ExternalStore:
    return ExternalStore.objects.create(
        code=code, name=code, kind="store", platform="baselinker", url=f"{fake.url}/connector.php",
        params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse, "price_group_id": fake.price_group},
        secrets={"token": fake.token}, **extra)


def feed_store(fake: FakeWholesaler, *, path: str = "/feed.csv", **extra) -> ExternalStore:
    return ExternalStore.objects.create(code="whs", name="Wholesaler", kind="wholesaler", platform="feed",
                                        url=f"{fake.url}{path}", **extra)


def _refusal(store) -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as refused:
        store_directions_validate(store=store)
    return [(p.field, p.reason) for p in refused.value.problems]


def test_the_seed_004_rules_refuse_bad_configurations_with_the_field(db, baselinker, wholesaler, warehouse):
    group = PriceGroup.objects.create(code="WEB", name="Web prices")
    shop_floor = make_location(code="S9", kind="store")
    assert _refusal(feed_store(wholesaler, stock_direction=D.SEND, price_direction=D.SEND, price_group=group)) == [
        ("stock_direction", "a wholesaler can only be downloaded from"),
        ("price_direction", "a wholesaler can only be downloaded from"),
        ("stock_direction", "Wholesaler feed (CSV or XML at a URL) does not take quantities"),
    ]
    assert _refusal(bl_store(baselinker, stock_direction=D.DOWNLOAD)) == [
        ("stock_target", "downloading stock needs a target warehouse")]
    assert _refusal(bl_store(baselinker, code="bl2", stock_direction=D.DOWNLOAD, stock_target=shop_floor)) == [
        ("stock_target", "S9 is not a warehouse")]
    both = bl_store(baselinker, code="bl3", stock_direction=D.DOWNLOAD, stock_target=warehouse, sync_inventory=True)
    assert _refusal(both) == [("sync_inventory", "a store is not both superior and inferior for stock")]
    both.sync_inventory = False
    both.save()
    store_directions_validate(store=both)  # now a plain superior store of WH1
    rival = bl_store(baselinker, code="bl4", stock_direction=D.DOWNLOAD, stock_target=warehouse,
                     price_direction=D.DOWNLOAD, price_group=group)
    assert _refusal(rival) == [("stock_target", "warehouse WH1 is already fed by bl3")]
    assert _refusal(bl_store(baselinker, code="bl5", price_direction=D.DOWNLOAD, price_group=group)) == [
        ("price_group", "this price group is already fed by bl4")]


def test_a_superior_store_posts_only_the_differences_as_counts_into_the_target_warehouse(
        sync_on, baselinker, warehouse, woo):
    # given five linked products; the store reports two of them changed
    skus = [f"P-{n}" for n in range(5)]
    articles(*skus)
    for n, sku in enumerate(skus):
        baselinker.add(pid=str(100 + n), sku=sku, stock=10)
    store = bl_store(baselinker, stock_direction=D.DOWNLOAD, stock_target=warehouse)
    assert links_match(store=store)["counts"]["matched"] == 5
    for sku in skus:
        receive(sku, warehouse, 10)
    baselinker.products["101"]["stock"]["bl_1"] = 4
    baselinker.products["103"]["stock"]["bl_1"] = 25
    # and a cart sells that warehouse's stock
    for sku in skus:
        woo.add_product(sku=sku)
    cart = make_woo_store(woo, location=warehouse)
    link_all(cart)
    StackEntry.objects.all().delete()
    # when the stock run downloads
    run = store_stock_run(store=store)
    changes_dispatch()
    # then two counts, nothing where equal; the cart hears of both
    assert (run.read, run.counted, run.unchanged) == (5, 2, 3)
    moves = StockMove.objects.filter(kind="count").order_by("article__sku")
    assert [(m.article.sku, m.counted, m.quantity, m.origin_code) for m in moves] == [
        ("P-1", Decimal(4), Decimal(-6), "bl"), ("P-3", Decimal(25), Decimal(15), "bl")]
    stack_sweep(store_id=cart.pk)
    assert [woo.stock(sku) for sku in skus] == [0, 4, 0, 25, 0]  # only the changes travel
    # a second run finds nothing to do
    assert store_stock_run(store=store).counted == 0


def test_a_feed_with_broken_rows_applies_the_good_rows_and_reports_each_bad_one(sync_on, wholesaler, warehouse):
    articles("W-1", "W-2", "W-3")
    wholesaler.set_rows([
        {"sku": "W-1", "ean": "", "quantity": "7", "price": "1.10"},
        {"sku": "W-2", "ean": "", "quantity": "seven", "price": "2.00"},
        {"sku": "", "ean": "", "quantity": "3", "price": "1.00"},
        {"sku": "W-3", "ean": "", "quantity": "-2", "price": "1.00"},
    ])
    store = feed_store(wholesaler, stock_direction=D.DOWNLOAD, stock_target=warehouse)
    links_match(store=store)
    run = store_stock_run(store=store)
    assert [(b.row, b.reason) for b in run.bad_rows] == [
        (3, "quantity 'seven' is not a number"), (4, "neither sku nor ean"),
        (5, "quantity -2 must be a whole number, not negative")]
    assert dict(StockLevel.objects.values_list("article__sku", "on_hand")) == {"W-1": Decimal(7)}


def test_an_xml_feed_works_the_same(sync_on, wholesaler, warehouse):
    articles("X-1")
    wholesaler.set_rows([{"sku": "X-1", "ean": "", "quantity": "12", "price": "3.50"}])
    store = feed_store(wholesaler, path="/feed.xml", stock_direction=D.DOWNLOAD, stock_target=warehouse)
    links_match(store=store)
    assert store_stock_run(store=store).counted == 1
    assert StockLevel.objects.get().on_hand == Decimal(12)


def test_a_feed_that_suddenly_zeroes_most_products_is_held_until_confirmed(sync_on, wholesaler, warehouse):
    skus = [f"Z-{n}" for n in range(5)]
    articles(*skus)
    wholesaler.set_rows([{"sku": sku, "quantity": "9"} for sku in skus])
    store = feed_store(wholesaler, stock_direction=D.DOWNLOAD, stock_target=warehouse)
    links_match(store=store)
    store_stock_run(store=store)
    wholesaler.set_rows([{"sku": sku, "quantity": "0" if n < 4 else "9"} for n, sku in enumerate(skus)])
    with pytest.raises(InvalidInput, match=r"4 of 5 products would drop to zero \(more than 50%\)"):
        store_stock_run(store=store)
    assert set(StockLevel.objects.values_list("on_hand", flat=True)) == {Decimal(9)}
    assert store_stock_run(store=store, confirm=True).counted == 4


def test_an_unreachable_store_leaves_stock_untouched_and_says_why(sync_on, wholesaler, warehouse):
    articles("U-1")
    wholesaler.set_rows([{"sku": "U-1", "quantity": "5"}])
    store = feed_store(wholesaler, stock_direction=D.DOWNLOAD, stock_target=warehouse)
    links_match(store=store)
    wholesaler.down = True
    with pytest.raises(ConnectorError) as failed:
        store_stock_run(store=store)
    assert failed.value.response.startswith("HTTP 503")
    assert StockMove.objects.count() == 0
    # and the schedule tries again by the interval, not at every tick
    assert [due.key for due in carts_due()] == []
    assert [due.key for due in carts_due(now=timezone.now() + timedelta(seconds=901))] == ["store-stock:whs"]


def test_downloaded_prices_go_into_the_group_keeping_history(sync_on, baselinker):
    group = PriceGroup.objects.create(code="WEB", name="Web prices")
    a, b = articles("R-1", "R-2")
    yesterday = timezone.localdate() - timedelta(days=1)
    Price.objects.create(article=a, group=group, amount=Decimal("2.00"), valid_from=yesterday)
    Price.objects.create(article=b, group=group, amount=Decimal("5.00"), valid_from=yesterday)
    baselinker.add(pid="1", sku="R-1", price="2.50")
    baselinker.add(pid="2", sku="R-2", price="5.00")
    store = bl_store(baselinker, price_direction=D.DOWNLOAD, price_group=group)
    links_match(store=store)
    run = store_price_run(store=store)
    assert (run.changed, run.unchanged) == (1, 1)
    assert list(Price.objects.filter(article=a).order_by("valid_from").values_list("amount", "valid_from")) == [
        (Decimal("2.00"), yesterday), (Decimal("2.50"), timezone.localdate())]
    assert Price.objects.filter(article=b).count() == 1


def test_an_inferior_store_gets_the_source_warehouses_summed_on_each_run_and_each_change(
        sync_on, baselinker, warehouse):
    second = make_location(code="WH2", kind="warehouse")
    group = PriceGroup.objects.create(code="WEB", name="Web prices")
    a, _ = articles("I-1", "I-2")
    baselinker.add(pid="1", sku="I-1", stock=0, price="1.00")
    baselinker.add(pid="2", sku="I-2", stock=0, price="1.00")
    store = bl_store(baselinker, stock_direction=D.SEND, price_direction=D.SEND, price_group=group)
    store.locations.add(warehouse, second)
    links_match(store=store)
    receive("I-1", warehouse, 3)
    receive("I-1", second, 4, key="rcv2")
    receive("I-2", second, 1)
    StackEntry.objects.all().delete()
    run = store_stock_run(store=store)
    assert (run.sent.sent, baselinker.stock("1"), baselinker.stock("2")) == (2, 7, 1)
    assert baselinker.update_calls == [("updateInventoryProductsStock", 2)]
    # a change in between goes through the web stack
    receive("I-1", second, 5, key="rcv3")
    stack_sweep(store_id=store.pk)
    assert baselinker.stock("1") == 12
    Price.objects.create(article=a, group=group, amount=Decimal("9.90"), valid_from=date(2026, 1, 1))
    assert store_price_run(store=store).sent == 1
    assert baselinker.products["1"]["prices"]["11"] == 9.9


def test_the_admin_refuses_sending_to_a_wholesaler_with_a_clear_message(db, wholesaler, client, staff_user):
    client.force_login(staff_user)
    form = {"code": "whs", "name": "Wholesaler", "kind": "wholesaler", "platform": "feed",
            "url": f"{wholesaler.url}/feed.csv", "params": "{}", "safety_buffer": "0",
            "order_interval_seconds": "60", "order_cursor": "{}", "active": "on", "stock_direction": "send",
            "stock_interval_seconds": "900", "zero_hold_share": "0.5", "price_direction": "none",
            "price_interval_seconds": "3600", "price_hold_share": "0.5", "price_cut_share": "0.5"}
    page = client.post("/admin/carts/externalstore/add/", form)
    assert page.status_code == 200
    assert "a wholesaler can only be downloaded from" in page.content.decode()
    assert ExternalStore.objects.count() == 0


def test_the_stock_run_command_reports_bad_rows_and_the_schedule_offers_due_runs(
        sync_on, wholesaler, warehouse):
    from io import StringIO

    from django.core.management import call_command


    articles("C-1")
    wholesaler.set_rows([{"sku": "C-1", "quantity": "4"}, {"sku": "C-2", "quantity": "x"}])
    store = feed_store(wholesaler, stock_direction=D.DOWNLOAD, stock_target=warehouse)
    links_match(store=store)
    from posinv.scheduling import dues_now

    def due_keys():
        now = timezone.now()
        return [due.key for due in dues_now(carts_due(now=now), now=now)]

    assert due_keys() == ["store-stock:whs"]
    out = StringIO()
    call_command("stores_sync", "whs", stdout=out)
    assert out.getvalue().splitlines() == ["whs stock: read 1, counted 1, unchanged 0, not linked 0",
                                           "  row 3: quantity 'x' is not a number"]
    assert due_keys() == []  # run by the command: the schedule waits its interval


def test_a_direct_channel_publishes_the_wholesalers_figures_without_ledger_moves(sync_on, wholesaler, woo,
                                                                                  shop_location):
    # given a cart that takes its quantities straight from a wholesaler's feed
    articles("D-1", "D-2")
    wholesaler.set_rows([{"sku": "D-1", "quantity": "1"}, {"sku": "D-2", "quantity": "0"}])
    source = feed_store(wholesaler)  # no stock direction: it only feeds the channel
    links_match(store=source)
    wholesaler.set_rows([{"sku": "D-1", "quantity": "30"}, {"sku": "D-2", "quantity": "0"}])
    woo.add_product(sku="D-1")
    woo.add_product(sku="D-2")
    cart = make_woo_store(woo, location=shop_location, direct_source=source, safety_buffer=5)
    link_all(cart)
    receive("D-2", shop_location, 50)  # our own stock does not matter to a direct channel
    assert StackEntry.objects.count() == 0
    # when the feed is fetched
    run = store_stock_run(store=source)
    stack_sweep(store_id=cart.pk)
    # then the cart shows the feed's figures minus its buffer, and the ledger did not move
    assert (run.direct_queued, woo.stock("D-1"), woo.stock("D-2")) == (1, 25, 0)
    assert StockMove.objects.filter(kind="count").count() == 0
    wholesaler.set_rows([{"sku": "D-1", "quantity": "12"}, {"sku": "D-2", "quantity": "0"}])
    store_stock_run(store=source)
    stack_sweep(store_id=cart.pk)
    assert woo.stock("D-1") == 7


def test_a_manual_link_made_in_the_admin_is_marked_manual(db, baselinker, client, staff_user):
    from carts.models import ProductLink

    client.force_login(staff_user)
    (article,) = articles("M-1")
    store = bl_store(baselinker)
    answer = client.post("/admin/carts/productlink/add/", {"store": store.pk, "article": article.pk,
                                                          "remote_ref": "555", "remote_product_id": "",
                                                          "remote_sku": "", "remote_barcode": ""})
    assert answer.status_code == 302
    assert list(ProductLink.objects.values_list("remote_ref", "matched_by")) == [("555", "manual")]


def test_a_match_run_keeps_manual_links(db, baselinker):
    from carts.models import ProductLink

    a, _ = articles("K-1", "K-2")
    baselinker.add(pid="1", sku="K-2")
    baselinker.add(pid="2", sku="OTHER")
    store = bl_store(baselinker)
    ProductLink.objects.create(store=store, article=a, remote_ref="2", matched_by="manual")
    report = links_match(store=store)
    assert sorted((m["sku"], m["ref"], m["by"]) for m in report["matched"]) == [
        ("K-1", "2", "manual"), ("K-2", "1", "sku")]
    assert sorted(ProductLink.objects.values_list("article__sku", "remote_ref", "matched_by")) == [
        ("K-1", "2", "manual"), ("K-2", "1", "sku")]


def test_the_store_page_shows_the_last_run_and_its_error(db, wholesaler, warehouse, client, staff_user):
    from carts.jobs import store_stock_job

    client.force_login(staff_user)
    store = feed_store(wholesaler, stock_direction=D.DOWNLOAD, stock_target=warehouse)
    wholesaler.down = True
    with pytest.raises(ConnectorError):
        store_stock_job(store_id=store.pk)
    page = client.get(f"/admin/carts/externalstore/{store.pk}/change/").content.decode()
    assert "store_stock at" in page and "<b>failed</b>" in page
    assert "TransientError: HTTP 503: {&quot;error&quot;: &quot;maintenance&quot;}" in page


def test_a_direct_source_that_suddenly_zeroes_most_products_is_held_too(sync_on, wholesaler, woo, shop_location):
    skus = [f"H-{n}" for n in range(5)]
    articles(*skus)
    wholesaler.set_rows([{"sku": sku, "quantity": "8"} for sku in skus])
    source = feed_store(wholesaler)
    links_match(store=source)
    for sku in skus:
        woo.add_product(sku=sku, stock=8)
    cart = make_woo_store(woo, location=shop_location, direct_source=source)
    link_all(cart)
    wholesaler.set_rows([{"sku": sku, "quantity": "0" if n else "8"} for n, sku in enumerate(skus)])
    with pytest.raises(InvalidInput, match=r"4 of 5 products would drop to zero"):
        store_stock_run(store=source)
    assert StackEntry.objects.count() == 0
    assert store_stock_run(store=source, confirm=True).direct_queued == 4
