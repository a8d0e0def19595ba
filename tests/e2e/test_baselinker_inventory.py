"""Issue 17 end to end: a 150,000-product BaseLinker inventory (151 pages of
1,000 at 100 requests per rolling window) is downloaded by real workers and a
real scheduler over real HTTP without the token ever being blocked: the
run pauses when the window is spent and the schedule goes on from the page
it reached, also after the worker running it is killed.

BaseLinker's minute is scaled to 12 s (the fake's window and
POSINV_RATE_WINDOW_SCALE alike) so the test stays bounded; the limiter, the
pauses and the resumption run for real. This test process spends half a
window on the same token first (the web server, say), through the same
Redis window the workers use."""
from __future__ import annotations

import sys
from decimal import Decimal

import pytest
from django.db import connection

from carts.models import CartSettings, ExternalStore, ProductLink, StoreDownload
from carts.ratelimit import RedisWindowBudget
from carts.services.stores import store_connector
from posinv.models import Article, JobRun, StockLevel
from tests.factories import make_location
from tests.fakes.baselinker import FakeBaseLinker
from tests.support.carts import worker_database_url
from tests.support.processes import process_env, started_command, started_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]

PRODUCTS = 150_000
WINDOW = 12.0


def _articles_insert(count: int) -> None:
    """150,000 articles B-000001... in one statement (the ORM's bulk_create takes a minute here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Article._meta.db_table} (sku, name, unit, category, active, created_at, updated_at) "
            "SELECT 'B-' || lpad(n::text, 6, '0'), 'B ' || n, 'pcs', '', true, now(), now() "
            "FROM generate_series(1, %s) AS n", [count])


def _links_insert(store: ExternalStore) -> None:
    """Each article B-n linked to the inventory's product n."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ProductLink._meta.db_table} (store_id, article_id, remote_ref, remote_product_id, "
            "remote_sku, remote_barcode, matched_by, outcome_unknown, claim_token) "
            f"SELECT %s, id, ltrim(substr(sku, 3), '0'), '', sku, '', 'sku', false, '' "
            f"FROM {Article._meta.db_table} WHERE sku LIKE 'B-%%'", [store.pk])


def test_a_150000_product_inventory_syncs_without_a_blocked_token_and_resumes_after_a_killed_worker(
        transactional_db, rq_mode, settings):
    settings.POSINV_RATE_WINDOW_SCALE = WINDOW / 60
    CartSettings.objects.create(pk=1)
    warehouse = make_location(code="WH-BL", kind="warehouse")
    _articles_insert(PRODUCTS)
    # One product in a hundred has stock; the rest are 0 here and there.
    stocked = {n: n % 97 + 1 for n in range(1, PRODUCTS + 1) if n % 100 == 0}
    with FakeBaseLinker(window_seconds=WINDOW) as fake:
        fake.add_many((str(n), f"B-{n:06d}", stocked.get(n, 0), 1.0) for n in range(1, PRODUCTS + 1))
        store = ExternalStore.objects.create(
            code="bl", name="BaseLinker", kind="store", platform="baselinker", url=f"{fake.url}/connector.php",
            params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse},
            secrets={"token": fake.token}, stock_direction="download", stock_target=warehouse,
            stock_interval_seconds=24 * 3600)
        _links_insert(store)
        env = process_env(database=worker_database_url(), POSINV_SCHEDULER_TICK_SECONDS="0.5",
                          POSINV_RATE_WINDOW_SCALE=str(WINDOW / 60), POSINV_RATE_INLINE_WAIT_SECONDS="0.5",
                          POSINV_STORE_LEASE_SECONDS="3")

        def pages_saved() -> int:
            download = StoreDownload.objects.filter(store=store).first()
            return download.pages_read if download else 0

        # Another process on the token has just used half the window.
        budget = store_connector(store=store).budget
        assert isinstance(budget, RedisWindowBudget)
        assert [budget.take() for _ in range(50)] == [0.0] * 50
        with started_command("run_scheduler", env=env, name="bl-scheduler"):
            with started_worker(env=env, name="bl-w1") as first:
                # when the worker running the download is killed part way through
                wait_until(lambda: pages_saved() >= 20, timeout=60, message="20 pages to be saved")
                first.kill_hard()
            reached = pages_saved()
            with started_worker(env=env, name="bl-w2"):
                wait_until(lambda: StoreDownload.objects.filter(store=store, state="applied").exists(),
                           timeout=120, message="the download to be applied")

    # then every product's figure is in the warehouse
    levels = dict(StockLevel.objects.filter(location=warehouse).values_list("article__sku", "on_hand"))
    assert {sku: q for sku, q in levels.items() if q} == {f"B-{n:06d}": Decimal(q) for n, q in stocked.items()}
    # and the token was never blocked: no window of the platform's saw more than 100 requests
    assert fake.blocked_answers == 0
    # and the run went on from the page it had reached: at most the page in flight was read twice
    pages = fake.pages_read("getInventoryProductsStock")
    assert sorted(set(pages)) == list(range(1, 152))
    assert len(pages) - 151 <= 1, f"pages read again after the kill: {len(pages) - 151}"
    assert reached < 151 and max(pages[:reached]) == reached
    # and the long waits were pauses handed back to the schedule, not sleeps in a worker
    paused = JobRun.objects.filter(name="store_stock", subject="bl", counts__has_key="paused_until")
    assert paused.exists()


def test_without_redis_two_processes_on_one_token_share_the_database_window(transactional_db):
    """The web server and the scheduler are separate processes without
    Redis: two child processes calling BaseLinker on one token together keep
    to 100 requests per window, because the window is a database row."""
    from tests.support.processes import spawn

    window = 2.0
    with FakeBaseLinker(window_seconds=window) as fake:
        ExternalStore.objects.create(
            code="bl", name="BaseLinker", kind="store", platform="baselinker", url=f"{fake.url}/connector.php",
            params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse},
            secrets={"token": fake.token})
        env = process_env(database=worker_database_url(), redis=False, POSINV_RATE_WINDOW_SCALE=str(window / 60))
        script = ("from carts.models import ExternalStore\n"
                  "from carts.services.stores import store_connector\n"
                  "connector = store_connector(store=ExternalStore.objects.get(code='bl'))\n"
                  "assert type(connector.budget).__name__ == 'DatabaseWindowBudget'\n"
                  "for _ in range(120):\n"
                  "    connector.call('getInventoryProductsStock', {'inventory_id': 7, 'page': 1})\n")
        children = [spawn([sys.executable, "manage.py", "shell", "-c", script], env=env, name=f"bl-sender{n}")
                    for n in (1, 2)]
        for child in children:
            child.popen.wait(timeout=60)
            assert child.popen.returncode == 0, child.log()
    assert (len(fake.calls), fake.blocked_answers) == (240, 0)
    stamps = sorted(c.at for c in fake.calls)
    assert max(sum(1 for t in stamps[i:] if t - start < window) for i, start in enumerate(stamps)) <= 100
