"""Issue 17 (BaseLinker, feeds, stores): the connector holds BaseLinker's 100
requests in any rolling minute per token, shared by every process (Redis or
the database), waits instead of aborting, resumes long downloads from the page
reached, reads "blocked until" in Warsaw time; price downloads that zero or cut
most prices are held; inferior stores hear of every change by default."""
from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from carts.connectors.base import Throttled
from carts.connectors.baselinker import BaseLinkerConnector
from carts.models import CartSettings, ExternalStore, ProductLink, RateWindow, StackEntry, StoreDownload
from carts.ratelimit import DatabaseWindowBudget, RedisWindowBudget, budget_for
from carts.schedules import carts_due
from carts.services.links import links_match
from carts.services.stack import stack_sweep
from carts.services.stores import store_connector, store_validate
from carts.services.warehouses import store_price_run, store_stock_run
from ops.selectors import sync_health_get
from posinv.exceptions import InvalidInput
from posinv.models import Price, PriceGroup, StockLevel
from tests.carts.conftest import articles, make_woo_store, receive
from tests.factories import make_location
from tests.fakes.baselinker import FakeBaseLinker
from tests.fakes.wholesaler import FakeWholesaler
from tests.fakes.woocommerce import FakeWooCommerce

D = ExternalStore.Direction


def bl_store(fake: FakeBaseLinker, *, code: str = "bl", **extra) -> ExternalStore:
    return ExternalStore.objects.create(
        code=code, name=code, kind="store", platform="baselinker", url=f"{fake.url}/connector.php",
        params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse, "price_group_id": fake.price_group},
        secrets={"token": fake.token}, **extra)


def connector_for(fake: FakeBaseLinker, **params) -> BaseLinkerConnector:
    return BaseLinkerConnector(url=f"{fake.url}/connector.php",
                               params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse, **params},
                               secrets={"token": fake.token})


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, stamp in enumerate(times):
        while stamp - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
def scaled(settings):
    """BaseLinker's minute as 2 s (the fake's window likewise): the limiter runs for real, bounded in time."""
    settings.POSINV_RATE_WINDOW_SCALE = 2 / 60
    settings.POSINV_RATE_INLINE_WAIT_SECONDS = 5
    return 2.0


@pytest.fixture
def warehouse(db):
    return make_location(code="WH1", name="Main warehouse", kind="warehouse")


# -- the shared sliding window -------------------------------------------------

def test_250_calls_keep_to_100_per_rolling_window_and_wait_instead_of_failing(db, scaled):
    with FakeBaseLinker(window_seconds=scaled) as fake:
        connector = connector_for(fake)
        started = time.monotonic()
        for _ in range(250):
            assert connector.call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})["status"] == "SUCCESS"
        elapsed = time.monotonic() - started
        assert fake.blocked_answers == 0
        assert most_in_any_window([c.at for c in fake.calls], scaled) <= 100
        assert elapsed >= 2 * scaled  # 250 calls need two waits for the window, slept, not raised


@pytest.mark.django_db(transaction=True)
def test_processes_sharing_a_token_share_one_window_in_the_database(scaled):
    """Two senders with their own budget objects (as the web server and a
    worker have) and their own database connections draw from one window."""
    with FakeBaseLinker(window_seconds=scaled) as fake:
        errors = []

        def sender():
            try:
                connector = connector_for(fake)
                assert isinstance(connector.budget, DatabaseWindowBudget)
                for _ in range(90):
                    connector.call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [] and fake.blocked_answers == 0
        assert most_in_any_window([c.at for c in fake.calls], scaled) <= 100
        assert len(fake.calls) == 180 and RateWindow.objects.count() == 1


@pytest.mark.redis
def test_with_redis_the_window_is_shared_there(db, scaled, settings, redis_conn):
    settings.POSINV_JOBS_INLINE = False
    with FakeBaseLinker(window_seconds=scaled) as fake:
        first, second = connector_for(fake), connector_for(fake)
        assert isinstance(first.budget, RedisWindowBudget)
        for n in range(150):
            (first if n % 2 else second).call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})
        assert fake.blocked_answers == 0
        assert most_in_any_window([c.at for c in fake.calls], scaled) <= 100
        assert RateWindow.objects.count() == 0


def test_a_fresh_window_is_not_a_full_bucket(db, settings):
    """100 calls pass at once, the 101st waits for the first to leave the window."""
    settings.POSINV_RATE_WINDOW_SCALE = 1
    budget = budget_for("baselinker", "url|token", BaseLinkerConnector.rate)
    first = time.monotonic()
    assert [budget.take() for _ in range(100)] == [0.0] * 100
    # the first call leaves the window (60 s, counted 2% longer) that long after it was taken
    assert abs(budget.take() - (61.2 - (time.monotonic() - first))) < 0.5


# -- blocked until, in BaseLinker's zone -----------------------------------------

def test_a_blocked_token_is_read_in_warsaw_time_and_stops_every_sender(db):
    with FakeBaseLinker(per_minute=2) as fake:  # stricter than our window: the platform blocks us
        connector = connector_for(fake)
        connector.call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})
        connector.call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})
        with pytest.raises(Throttled, match="token blocked: Query limit exceeded") as blocked:
            connector.call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})
        expected = fake.blocked_until - time.time()
        assert abs(blocked.value.retry_after - expected) < 1.5  # read as UTC it would be an hour or two off
        assert 55 <= blocked.value.retry_after <= 61
        calls = len(fake.calls)
        with pytest.raises(Throttled):  # another sender on the token waits too, without calling
            connector_for(fake).call("getInventoryProductsStock", {"inventory_id": 7, "page": 1})
        assert len(fake.calls) == calls


def test_the_zone_is_a_store_setting_checked_on_save(db):
    with FakeBaseLinker(zone="UTC") as fake:
        connector = connector_for(fake, timezone="UTC")
        message = "Query limit exceeded, token blocked until 2026-05-03 17:15:34"
        now = datetime(2026, 5, 3, 17, 15, 4, tzinfo=UTC)
        assert connector.blocked_wait(message, now=now) == 30
        assert connector_for(fake).blocked_wait(message, now=now - timedelta(hours=2)) == 30  # CEST = UTC+2
        store = bl_store(fake)
        store.params["timezone"] = "Mars/Olympus"
        with pytest.raises(InvalidInput) as refused:
            store_validate(store=store)
        assert [(p.field, p.reason) for p in refused.value.problems] == [
            ("timezone", "'Mars/Olympus' is not a known zone (e.g. Europe/Warsaw)")]


def test_the_json_status_is_trusted_over_the_http_status(sync_on, warehouse):
    with FakeBaseLinker(http_status=503) as fake:
        articles("J-1")
        fake.add(pid="1", sku="J-1", stock=6)
        store = bl_store(fake, stock_direction=D.DOWNLOAD, stock_target=warehouse)
        links_match(store=store)
        assert store_stock_run(store=store).counted == 1
        assert StockLevel.objects.get().on_hand == 6


# -- long downloads pause and resume -----------------------------------------------

def test_a_long_download_pauses_for_the_window_and_goes_on_from_the_page_it_reached(sync_on, warehouse, settings):
    settings.POSINV_RATE_WINDOW_SCALE = 10 / 60
    settings.POSINV_RATE_INLINE_WAIT_SECONDS = 0.5  # a window's wait is "long": the run pauses, not sleeps
    with FakeBaseLinker(window_seconds=10.0) as fake:
        fake.add_many((str(n), f"L-{n}", 0, 1.0) for n in range(1, 25_001))
        fake.products["24999"]["stock"]["bl_1"] = 8
        a, b = articles("L-1", "L-24999")
        store = bl_store(fake, stock_direction=D.DOWNLOAD, stock_target=warehouse)
        ProductLink.objects.bulk_create([ProductLink(store=store, article=a, remote_ref="1"),
                                         ProductLink(store=store, article=b, remote_ref="24999")])
        # Another process on the same token has just spent 90 of the window's 100 calls.
        budget = store_connector(store=store).budget
        assert [budget.take() for _ in range(90)] == [0.0] * 90
        first = store_stock_run(store=store)
        assert (first.pages_read, first.next_page, first.counted) == (10, 11, 0)
        assert first.paused_until > timezone.now()
        assert [d.key for d in carts_due()] == []  # not offered before the limit allows
        runs = [first]
        while runs[-1].paused_until is not None:
            time.sleep(max((runs[-1].paused_until - timezone.now()).total_seconds(), 0) + 0.05)
            assert [d.key for d in carts_due()] == ["store-stock:bl"]
            runs.append(store_stock_run(store=store))
        assert (runs[-1].pages_read, runs[-1].counted) == (26, 1)
        # every page read once: the runs after a pause did not start again from page 1
        assert fake.pages_read("getInventoryProductsStock") == list(range(1, 27))
        assert StockLevel.objects.get(article=b).on_hand == 8 and fake.blocked_answers == 0
        assert StoreDownload.objects.get().state == StoreDownload.State.APPLIED
        assert not StoreDownload.objects.get().pages.exists()


def test_a_download_the_platform_blocks_goes_on_after_the_blocked_time(sync_on, warehouse):
    with FakeBaseLinker(per_minute=3) as fake:
        fake.add_many((str(n), f"P-{n}", 2, 1.0) for n in range(1, 4501))
        articles("P-4500")
        store = bl_store(fake, stock_direction=D.DOWNLOAD, stock_target=warehouse)
        ProductLink.objects.create(store=store, article_id=articles("P-1")[0].pk, remote_ref="1")
        first = store_stock_run(store=store)
        assert (first.pages_read, first.next_page) == (3, 4) and 50 <= (
            first.paused_until - timezone.now()).total_seconds() <= 61
        # The platform's minute passes.
        fake.blocked_until, fake.window = 0, []
        RateWindow.objects.update(blocked_until=0)
        second = store_stock_run(store=store)
        assert (second.pages_read, second.counted) == (5, 1)
        assert fake.pages_read("getInventoryProductsStock") == [1, 2, 3, 4, 5]


# -- prices: a broken feed is held -------------------------------------------------

@pytest.fixture
def priced(sync_on):
    group = PriceGroup.objects.create(code="BUY", name="Purchase")
    skus = [f"R-{n}" for n in range(6)]
    yesterday = timezone.localdate() - timedelta(days=1)
    for article in articles(*skus):
        Price.objects.create(article=article, group=group, amount=Decimal("10.00"), valid_from=yesterday)
    fake = FakeBaseLinker().start()
    for n, sku in enumerate(skus):
        fake.add(pid=str(n + 1), sku=sku, price="10.00")
    store = bl_store(fake, price_direction=D.DOWNLOAD, price_group=group)
    links_match(store=store)
    yield fake, store, group
    fake.stop()


def _prices(group) -> set:
    return set(Price.objects.filter(group=group).values_list("amount", flat=True))


@pytest.mark.parametrize(("feed", "held"), [
    (["0.00"] * 4 + ["10.00"] * 2, "4 of 6 prices would drop to zero (4) or fall by more than 50% (0)"),
    (["0.99"] * 3 + ["0.00"] + ["10.00"] * 2, "4 of 6 prices would drop to zero (1) or fall by more than 50% (3)"),
])
def test_a_price_download_that_zeroes_or_slashes_most_prices_is_held(priced, feed, held):
    fake, store, group = priced
    for n, price in enumerate(feed):
        fake.products[str(n + 1)]["prices"]["11"] = float(price)
    with pytest.raises(InvalidInput, match=held.replace("(", r"\(").replace(")", r"\)")):
        store_price_run(store=store)
    assert _prices(group) == {Decimal("10.00")}
    download = StoreDownload.objects.get(store=store, kind="prices")
    assert (download.state, download.hold_reason.startswith(held)) == ("held", True)


def test_ordinary_price_changes_pass(priced):
    fake, store, group = priced
    for n, price in enumerate(["9.00", "12.00", "6.00", "10.00", "10.00", "11.00"]):
        fake.products[str(n + 1)]["prices"]["11"] = float(price)
    run = store_price_run(store=store)
    assert (run.changed, run.unchanged) == (4, 2)
    assert _prices(group) == {Decimal(p) for p in ("10.00", "9.00", "12.00", "6.00", "11.00")}


def test_a_held_price_download_is_applied_or_discarded_in_the_admin_with_the_permission(
        priced, client, django_user_model):
    fake, store, group = priced
    for n in range(6):
        fake.products[str(n + 1)]["prices"]["11"] = 0.0
    with pytest.raises(InvalidInput):
        store_price_run(store=store)
    held = StoreDownload.objects.get(state="held")
    clerk = django_user_model.objects.create_user(username="clerk", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_storedownload"),
                               Permission.objects.get(codename="view_externalstore"))
    client.force_login(clerk)
    listing = client.get("/admin/carts/storedownload/").content.decode()
    assert "6 of 6 prices would drop to zero" in listing and "apply_held" not in listing
    page = client.get(f"/admin/carts/externalstore/{store.pk}/change/").content.decode()
    assert "<b>held</b>" in page and "6 of 6 prices would drop to zero" in page
    refused = client.post("/admin/carts/storedownload/", {"action": "apply_held", "_selected_action": [held.pk]})
    assert refused.status_code in (200, 302) and _prices(group) == {Decimal("10.00")}
    assert StoreDownload.objects.get(pk=held.pk).state == "held"

    clerk.user_permissions.add(Permission.objects.get(codename="confirm_storedownload"))
    client.force_login(django_user_model.objects.get(pk=clerk.pk))
    assert "apply_held" in client.get("/admin/carts/storedownload/").content.decode()
    client.post("/admin/carts/storedownload/", {"action": "apply_held", "_selected_action": [held.pk]})
    applied = StoreDownload.objects.get(pk=held.pk)
    assert (applied.state, applied.decided_by, applied.outcome["changed"]) == ("applied", "clerk", 6)
    assert Price.objects.filter(group=group, valid_from=timezone.localdate(), amount=0).count() == 6

    with pytest.raises(InvalidInput):  # another broken feed the next day...
        Price.objects.filter(valid_from=timezone.localdate()).update(valid_from=date(2000, 1, 1))
        store_price_run(store=store)
    again = StoreDownload.objects.get(state="held")
    client.post("/admin/carts/storedownload/", {"action": "discard_held", "_selected_action": [again.pk]})
    assert StoreDownload.objects.get(pk=again.pk).state == "discarded"
    assert Price.objects.filter(group=group, valid_from=timezone.localdate()).count() == 0


# -- inferior stores hear of every change by default ---------------------------------

def test_an_inferior_store_is_told_of_each_change_without_the_carts_master_switch(db, warehouse):
    assert CartSettings.objects.count() == 0  # fresh install: synchronize QOH is off
    with FakeBaseLinker() as fake:
        articles("N-1")
        fake.add(pid="1", sku="N-1", stock=0)
        store = bl_store(fake, stock_direction=D.SEND)
        store.locations.add(warehouse)
        links_match(store=store)
        with FakeWooCommerce() as woo:
            woo.add_product(sku="N-1")
            cart = make_woo_store(woo, location=warehouse)
            links_match(store=cart)
            receive("N-1", warehouse, 5)
        assert list(StackEntry.objects.values_list("store__code", "quantity")) == [("bl", 5)]
        stack_sweep(store_id=store.pk)
        assert fake.stock("1") == 5


def test_a_wholesalers_feed_of_zero_prices_is_held_too(sync_on):
    group = PriceGroup.objects.create(code="GROSS", name="Purchase")
    skus = [f"W-{n}" for n in range(5)]
    for article in articles(*skus):
        Price.objects.create(article=article, group=group, amount=Decimal("4.00"), valid_from=date(2026, 1, 1))
    with FakeWholesaler() as feed:
        feed.set_rows([{"sku": sku, "quantity": "1", "price": "0.00"} for sku in skus])
        store = ExternalStore.objects.create(code="whs", name="Wholesaler", kind="wholesaler", platform="feed",
                                             url=f"{feed.url}/feed.csv", price_direction=D.DOWNLOAD,
                                             price_group=group)
        links_match(store=store)
        with pytest.raises(InvalidInput, match=r"5 of 5 prices would drop to zero \(5\)"):
            store_price_run(store=store)
        assert _prices(group) == {Decimal("4.00")}
        assert StoreDownload.objects.get(store=store).state == "held"
        feed.set_rows([{"sku": sku, "quantity": "1", "price": "4.20"} for sku in skus])
        assert store_price_run(store=store).changed == 5  # the mended feed supersedes the held one
        assert list(StoreDownload.objects.filter(store=store).values_list("state", flat=True).order_by("pk")) == [
            "discarded", "applied"]


def test_sync_health_says_a_download_is_held_and_why(priced):
    fake, store, group = priced
    for n in range(6):
        fake.products[str(n + 1)]["prices"]["11"] = 0.0
    with pytest.raises(InvalidInput):
        store_price_run(store=store)
    (health,) = sync_health_get().stores
    assert health.status == "amber"
    assert health.reason == ("a prices download is held for confirmation: 6 of 6 prices would drop to zero (6) or "
                             "fall by more than 50% (0) (more than 50%); check the feed and confirm (apply or "
                             "discard it in Store downloads)")
    assert "state__exact=held" in health.links["downloads"]
