"""The sync-health dashboard: per register, cabinet and store the figures
an operator needs, red / amber / green with the reason, links to the list
behind every figure, and a fixed number of queries."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cabinets.models import Tray, WeighingCabinet
from carts.models import ExternalStore, StackEntry
from carts.ratelimit import budgets_reset
from ops.selectors import sync_health_get
from pos.models import SyncEntry
from posinv.models import JobRun
from tests.carts.conftest import link_all, make_woo_store, receive
from tests.factories import make_article, make_location
from tests.ops.conftest import ago
from tests.pos.factories import make_register, receipt_entries

pytestmark = pytest.mark.django_db
URL = "/ops/health/"


def row(body: str, attr: str, code: str) -> str:
    """The dashboard's table row of one register / cabinet / store."""
    match = re.search(rf'<tr class="ops-row [^"]*" data-{attr}="{re.escape(code)}".*?</tr>', body, re.S)
    assert match, f"no row for {attr} {code}"
    return match.group(0)


def push(api, code, entries):
    return api.post(f"/api/v1/registers/{code}/entries/", {"entries": entries}, format="json")


def test_a_new_register_is_amber_until_its_first_transfer_then_green(admin_client, register_client, store):
    make_article(sku="A-1")
    make_register(code="R1", location=store)

    before = admin_client.get(URL).content.decode()
    answer = push(register_client("R1"), "R1", receipt_entries(1, "R1-000001", [("A-1", "2", "1.20")]))
    after = admin_client.get(URL).content.decode()

    assert 'data-status="amber"' in row(before, "register", "R1")
    assert "no transfer yet" in row(before, "register", "R1")
    assert answer.status_code == 200
    green = row(after, "register", "R1")
    assert 'data-status="green"' in green and "in sync" in green
    assert re.search(r'class="ops-pending">0</a>', green) and re.search(r'class="ops-failed">0</a>', green)


def test_a_failed_entry_turns_the_register_red_and_links_to_exactly_that_entry(admin_client, register_client, store):
    make_article(sku="A-1")
    register = make_register(code="R1", location=store)
    entries = receipt_entries(1, "R1-000001", [("NOPE", "1", "1.00")])

    answer = push(register_client("R1"), "R1", entries)
    body = admin_client.get(URL).content.decode()

    assert answer.json()["failed"] >= 1
    failed_count = SyncEntry.objects.filter(register=register, state="failed").count()
    red = row(body, "register", "R1")
    assert 'data-status="red"' in red and f"{failed_count} failed entr" in red
    # The reason names the entry and its cause, and what a person can do.
    assert "unknown sku &#x27;NOPE&#x27;" in red and "Retry, or Skip them with a reason" in red
    link = re.search(r'<a href="([^"]+)" class="ops-failed">(\d+)</a>', red)
    assert int(link.group(2)) == failed_count
    listing = admin_client.get(link.group(1).replace("&amp;", "&")).content.decode()
    failed = SyncEntry.objects.filter(register=register, state="failed").order_by("entry_no").first()
    assert failed.record_id in listing
    assert f"{failed_count} synchronization entr" in listing  # the admin's own result count


def test_pending_entries_show_their_count_and_the_oldest_age(admin_client, store):
    register = make_register(code="R2", location=store, last_success_at=ago(minutes=1))
    for no in (2, 3):  # entry 1 is missing: both wait for the gap
        SyncEntry.objects.create(register=register, direction="in", entry_no=no, table="customer",
                                 record_id=f"customer:{no}", record={}, record_hash="x", state="waiting")
    SyncEntry.objects.filter(entry_no=2).update(created_at=ago(seconds=95))

    health = sync_health_get()

    (r2,) = health.registers
    assert (r2.pending, r2.failed, r2.status, r2.reason) == (2, 0, "amber", "2 entries pending")
    assert 95 <= r2.oldest_pending_age < 100
    listing = admin_client.get(r2.links["pending"]).content.decode()
    assert "customer:2" in listing and "customer:3" in listing and "2 synchronization entries" in listing
    SyncEntry.objects.filter(entry_no=2).update(created_at=ago(hours=1))
    (late,) = sync_health_get().registers
    assert (late.status, late.reason) == ("red", "entries pending for over 900 s")


def test_cabinets_show_last_reading_stale_and_unstable_trays(admin_client):
    screw = make_article(sku="SCREW", unit_weight_g=Decimal("2"))
    fresh = WeighingCabinet.objects.create(code="C1", location=make_location(code="C1L"), interval_seconds=600,
                                           last_reading_at=ago(minutes=3))
    Tray.objects.create(cabinet=fresh, tray_id="T-1", article=screw, state="filled", last_read_at=ago(minutes=3))
    Tray.objects.create(cabinet=fresh, tray_id="T-2", article=screw, state="filled", last_read_at=ago(minutes=45))
    Tray.objects.create(cabinet=fresh, tray_id="T-3", article=screw, state="filled", last_read_at=ago(minutes=3),
                        held_quantity=Decimal("7"))
    silent = WeighingCabinet.objects.create(code="C2", location=make_location(code="C2L"), interval_seconds=60,
                                            last_reading_at=ago(minutes=5))

    body = admin_client.get(URL).content.decode()

    c1 = row(body, "cabinet", "C1")
    assert 'data-status="amber"' in c1 and "1 stale trays, 1 unstable trays" in c1
    assert f"cabinet__id__exact={fresh.pk}&amp;held_quantity__isnull=False" in c1
    c2 = row(body, "cabinet", "C2")
    assert 'data-status="red"' in c2 and "silent for over two intervals (120 s)" in c2
    unstable = admin_client.get(f"/admin/cabinets/tray/?cabinet__id__exact={fresh.pk}&held_quantity__isnull=False")
    assert "T-3" in unstable.content.decode() and "T-2" not in unstable.content.decode()
    stale_link = re.search(r'<a href="([^"]+)">1</a></td>\s*<td><a href="[^"]+">1</a>', c1).group(1)
    stale = admin_client.get(stale_link.replace("&amp;", "&")).content.decode()
    assert "T-2" in stale and "T-1" not in stale and "T-3" not in stale
    assert silent.pk != fresh.pk


def test_a_throttled_cart_is_amber_with_its_stack_depth_then_green_once_sent(admin_client, sync_on, woo,
                                                                               shop_location):
    from carts.services.stack import stack_sweep

    make_article(sku="A-1")
    woo.add_product(sku="A-1")
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    woo.throttle_for(30, retry_after=30)
    receive("A-1", shop_location, 8)
    stack_sweep(store_id=wc.pk, time_budget=0.2)

    throttled = row(admin_client.get(URL).content.decode(), "store", "woo")
    (woo_health,) = sync_health_get().stores

    assert (woo_health.depth, woo_health.throttled, woo_health.failed) == (1, 1, 0)
    assert woo_health.status == "amber" and woo_health.reason == "1 entries held back by throttling"
    assert 'data-status="amber"' in throttled
    woo.throttle_for(0)
    budgets_reset()  # the 30 s block our shared budget took from the 429 has passed
    StackEntry.objects.update(next_attempt_at=ago(seconds=1))
    stack_sweep(store_id=wc.pk)
    (sent,) = sync_health_get().stores
    assert (sent.depth, sent.throttled, sent.status, woo.stock("A-1")) == (0, 0, "green", 8)


def test_failed_stack_entries_and_a_failed_order_import_turn_the_store_red(admin_client, db):
    article = make_article(sku="A-1")
    shop = ExternalStore.objects.create(code="shop", name="Shop", platform="webhook", url="https://shop.example",
                                        import_orders=True, last_order_import_at=ago(seconds=30))
    JobRun.objects.create(name="cart_orders_import", subject="shop", status="failed", error="HTTP 500")
    (importing,) = sync_health_get().stores
    StackEntry.objects.create(store=shop, article=article, quantity=3, state="failed", next_attempt_at=ago(seconds=1),
                              last_response="HTTP 500")

    body = admin_client.get(URL).content.decode()

    assert (importing.status, importing.reason, importing.last_import_status) == (
        "red", "the last order import failed", "failed")
    red = row(body, "store", "shop")
    assert 'data-status="red"' in red and "1 failed web stack entries" in red
    assert f"/admin/carts/stackentry/?store__id__exact={shop.pk}&amp;state__exact=failed" in red


def test_a_record_waiting_long_is_amber_then_red(db):
    article = make_article(sku="A-1")
    shop = ExternalStore.objects.create(code="shop", name="Shop", platform="webhook", url="https://shop.example")
    entry = StackEntry.objects.create(store=shop, article=article, quantity=3, next_attempt_at=ago(seconds=1))
    StackEntry.objects.filter(pk=entry.pk).update(created_at=ago(seconds=45))
    (waiting,) = sync_health_get().stores
    StackEntry.objects.filter(pk=entry.pk).update(created_at=ago(minutes=10))
    (late,) = sync_health_get().stores

    assert (waiting.depth, waiting.status, waiting.reason) == (1, "amber", "a record has waited over 20 s")
    assert 45 <= waiting.oldest_waiting_age < 50
    assert (late.status, late.reason) == ("red", "a record has waited over 300 s")


def test_the_dashboard_costs_the_same_queries_for_one_or_many_objects(admin_client, store):
    def add(n: int):
        register = make_register(code=f"R{n}", location=store)
        SyncEntry.objects.create(register=register, direction="in", entry_no=1, table="customer",
                                 record_id="customer:1", record={}, record_hash="x", state="failed")
        cabinet = WeighingCabinet.objects.create(code=f"C{n}", location=make_location(code=f"CL{n}"))
        Tray.objects.create(cabinet=cabinet, tray_id="T-1", state="filled")
        shop = ExternalStore.objects.create(code=f"s{n}", name="S", platform="webhook", url="https://s.example")
        StackEntry.objects.create(store=shop, article=make_article(sku=f"A{n}"), quantity=1,
                                  next_attempt_at=ago(seconds=1))

    add(1)
    admin_client.get(URL)  # warm the session and content types
    with CaptureQueriesContext(connection) as one:
        assert admin_client.get(URL).status_code == 200
    for n in range(2, 6):
        add(n)
    with CaptureQueriesContext(connection) as five:
        page = admin_client.get(URL)

    assert page.content.decode().count('class="ops-row ') == 15
    assert len(five.captured_queries) == len(one.captured_queries)
    # session + user, the admin sidebar's cart-settings check; ours: registers, cabinets, trays,
    # stores, ledger, undelivered changes, moves/min, 2 lag, 2 chart series, failing schedules,
    # cabinets' rejected readings, job runs left without a heartbeat
    assert len(one.captured_queries) == 17


def test_the_overall_status_is_the_worst_section_and_the_admin_index_shows_it(admin_client, store):
    make_register(code="R1", location=store, last_success_at=ago(minutes=1))
    JobRun.objects.create(name="verify_ledger", subject="ledger", status="succeeded", counts={"drifting": 0})

    green = admin_client.get("/admin/").content.decode()
    make_register(code="R9", location=store)
    amber = admin_client.get("/admin/").content.decode()

    assert 'class="ops-banner ops-green"' in green and "everything in sync" in green
    assert 'class="ops-banner ops-amber"' in amber and "needs a look: registers" in amber
    assert 'href="/ops/health/"' in amber


def test_the_chart_draws_24_hourly_bars_and_the_lag_line(admin_client, store, sync_on, woo, shop_location):
    from carts.services.stack import stack_sweep

    make_article(sku="A-1")
    woo.add_product(sku="A-1")
    wc = make_woo_store(woo, location=shop_location)
    link_all(wc)
    receive("A-1", shop_location, 5)
    stack_sweep(store_id=wc.pk)

    body = admin_client.get(URL).content.decode()

    svg = re.search(r"<svg xmlns=.*?</svg>", body, re.S).group(0)
    assert svg.count('<rect class="bar"') == 24
    assert "1 moves, 1 sent to carts, lag avg" in svg
    assert svg.count('<circle class="lag-point"') == 1


def test_the_dashboard_needs_a_staff_login(client, db):
    answer = client.get(URL)

    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(("value", "shown"), [
    (None, "—"), (4.25, "4.2 s"), (95, "95 s"), (600, "10.0 min"), (9000, "2.5 h"), (23124691.7, "267.6 d"),
])
def test_ages_read_as_a_person_says_them(value, shown):
    from ops.templatetags.ops_health import seconds

    assert seconds(value) == shown


def test_an_unreachable_redis_turns_queues_red_and_the_dashboard_still_renders(admin_client, settings):
    from tests.support.processes import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = dead
    settings.POSINV_JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": dead, "DEFAULT_TIMEOUT": 60} for name in settings.RQ_QUEUE_NAMES}

    page = admin_client.get(URL)

    body = page.content.decode()
    assert page.status_code == 200
    assert 'class="ops-section ops-red" id="ops-queues"' in body
    assert re.search(r"Redis unreachable: [^<]*refused", body, re.I)
    assert 'class="ops-overall ops-red"' in body


def test_the_age_thresholds_come_from_settings(settings):
    settings.POSINV_HEALTH_STACK_AMBER_SECONDS = 60
    article = make_article(sku="A-1")
    shop = ExternalStore.objects.create(code="shop", name="Shop", platform="webhook", url="https://shop.example")
    entry = StackEntry.objects.create(store=shop, article=article, quantity=3, next_attempt_at=ago(seconds=1))
    StackEntry.objects.filter(pk=entry.pk).update(created_at=ago(seconds=45))

    (within,) = sync_health_get().stores
    settings.POSINV_HEALTH_STACK_AMBER_SECONDS = 30
    (beyond,) = sync_health_get().stores

    assert (within.status, within.reason) == ("green", "in sync")
    assert (beyond.status, beyond.reason) == ("amber", "a record has waited over 30 s")


def test_staff_without_the_job_run_permission_see_neither_the_dashboard_nor_the_banner(client, django_user_model):
    from django.contrib.auth.models import Permission

    cashier = django_user_model.objects.create_user("cashier", password="pw-123456", is_staff=True)
    client.force_login(cashier)
    refused = client.get(URL)
    refused_verify = client.post("/ops/health/verify-ledger/")
    index = client.get("/admin/").content.decode()
    cashier.user_permissions.add(Permission.objects.get(codename="view_jobrun"))
    allowed = client.get(URL)

    assert (refused.status_code, refused_verify.status_code) == (403, 403)
    assert 'id="ops-banner"' not in index
    assert not JobRun.objects.filter(name="verify_ledger").exists()
    assert allowed.status_code == 200


def test_every_admin_link_on_the_dashboard_opens_its_list(admin_client, store):
    article = make_article(sku="A-1")
    register = make_register(code="R1", location=store)
    SyncEntry.objects.create(register=register, direction="in", entry_no=1, table="customer",
                             record_id="customer:1", record={}, record_hash="x", state="failed")
    cabinet = WeighingCabinet.objects.create(code="C1", location=make_location(code="C1L"))
    Tray.objects.create(cabinet=cabinet, tray_id="T-1", state="filled", held_quantity=Decimal("2"))
    shop = ExternalStore.objects.create(code="shop", name="Shop", platform="webhook", url="https://s.example",
                                        import_orders=True)
    StackEntry.objects.create(store=shop, article=article, quantity=1, next_attempt_at=ago(seconds=1))
    JobRun.objects.create(name="cart_orders_import", subject="shop", status="succeeded")

    body = admin_client.get(URL).content.decode()

    figures = body[body.index('id="ops-dashboard"'):body.index("Machine-readable")]
    links = sorted({href.replace("&amp;", "&") for href in re.findall(r'href="(/admin/[^"]+)"', figures)})
    assert len(links) == 17  # 4 per register, 6 per cabinet, 5 per store, 1 for the ledger, 1 for changes
    for link in links:
        answer = admin_client.get(link)
        # The admin redirects a lookup it does not allow to "?e=1"; every figure's list must open as asked.
        assert answer.status_code == 200, (link, answer.status_code, answer.get("Location"))


def test_the_throttled_figure_links_to_exactly_the_throttled_entries(admin_client):
    shop = ExternalStore.objects.create(code="shop", name="Shop", platform="shopify", url="https://s.example")
    responses = ["HTTP 429 Too Many Requests; retry after 2s", "rate budget spent; 0.40s until the next call",
                 '{"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}', "HTTP 502 Bad Gateway",
                 ""]
    for n, response in enumerate(responses):
        StackEntry.objects.create(store=shop, article=make_article(sku=f"A-{n}"), quantity=n, last_response=response,
                                  next_attempt_at=ago(seconds=1))

    (health,) = sync_health_get().stores
    listing = admin_client.get(health.links["throttled"]).content.decode()

    assert (health.depth, health.throttled) == (5, 3)
    assert listing.count('class="action-select"') == 3


def test_healthz_names_a_register_s_failed_entry_with_a_link_and_is_green_again_once_skipped(client, store):
    from pos.services.apply import entries_receive, entries_skip

    make_article(sku="A-1")
    register = make_register(code="R1", location=store)
    entries = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")])
    entries[0]["record"]["total"] = "100000000000.00"  # the main system calls it too large
    entries_receive(register_id=register.pk, entries=entries)

    registers = client.get("/healthz").json()["registers"]

    assert registers["status"] == "red"
    assert registers["reason"].startswith("register R1: 1 failed entry: entry 1 (receipt:R1-000001) could not be "
                                          "applied: record.total: must be between -999,999,999.99 and 999,999,999.99 "
                                          "(the system's amount bound).")
    assert registers["link"] == (f"/admin/pos/syncentry/?register__id__exact={register.pk}&direction__exact=in"
                                 "&state__exact=failed")
    failed = SyncEntry.objects.get(state="failed")
    entries_skip(register_id=register.pk, entry_ids=[failed.pk], reason="booked by hand", user="alice")
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["registers"] == {"status": "green", "reason": "in sync", "link": ""}


def test_a_batch_the_main_refuses_whole_turns_the_register_red_until_a_later_one_arrives(store, register_client):
    make_article(sku="A-1")
    make_register(code="R1", location=store)
    api = register_client("R1")
    bad = receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")])
    bad[1]["record_id"] = ""

    assert push(api, "R1", bad).status_code == 400
    (r1,) = sync_health_get().registers
    assert (r1.status, r1.reason) == (
        "red", "last transfer failed: a batch was refused whole (HTTP 400): entries[1].record_id: required, at most "
               "200 characters")

    assert push(api, "R1", receipt_entries(1, "R1-000001", [("A-1", "1", "1.00")])).status_code == 200
    (r1,) = sync_health_get().registers
    assert (r1.status, r1.reason) == ("green", "in sync")
