"""Issue 7 end to end: a real scheduler and a real worker run a wholesaler's
feed (over HTTP) into the target warehouse by its interval, and the change
reaches an inferior BaseLinker-style store through the web stack."""
from __future__ import annotations

from decimal import Decimal

import pytest

from carts.models import CartSettings, ExternalStore
from carts.services.links import links_match
from posinv.models import JobRun, StockLevel
from tests.factories import make_article, make_location
from tests.fakes.baselinker import FakeBaseLinker
from tests.fakes.wholesaler import FakeWholesaler
from tests.support.carts import worker_database_url
from tests.support.processes import process_env, started_command, started_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e]


def test_a_scheduled_feed_run_counts_into_the_warehouse_and_reaches_the_inferior_store(transactional_db, rq_mode):
    # given a wholesaler feeding WH-GROSS every second, and a marketplace selling WH-GROSS
    CartSettings.objects.create(pk=1, synch_qoh=True)
    gross = make_location(code="WH-GROSS", kind="warehouse")
    make_article(sku="G-1")
    make_article(sku="G-2")
    with FakeWholesaler() as feed, FakeBaseLinker() as marketplace:
        feed.set_rows([{"sku": "G-1", "quantity": "40"}, {"sku": "G-2", "quantity": "x"}])
        marketplace.add(pid="1", sku="G-1", stock=0)
        wholesaler = ExternalStore.objects.create(code="gross", name="Grossist", kind="wholesaler", platform="feed",
                                                  url=f"{feed.url}/feed.csv", stock_direction="download",
                                                  stock_target=gross, stock_interval_seconds=1)
        store = ExternalStore.objects.create(
            code="market", name="Marketplace", kind="store", platform="baselinker",
            url=f"{marketplace.url}/connector.php", stock_direction="send", stock_interval_seconds=3600,
            params={"inventory_id": marketplace.inventory_id, "warehouse_id": marketplace.warehouse},
            secrets={"token": marketplace.token})
        store.locations.add(gross)
        links_match(store=wholesaler)
        links_match(store=store)
        ExternalStore.objects.filter(pk=store.pk).update(last_stock_run_at="2026-01-01T00:00:00Z")
        env = process_env(database=worker_database_url(), POSINV_SCHEDULER_TICK_SECONDS="0.5")
        with started_worker(env=env, name="stores-w1"), started_command("run_scheduler", env=env,
                                                                          name="stores-scheduler"):
            # then the feed's 40 arrive as a count, and the marketplace shows them
            wait_until(lambda: marketplace.stock("1") == 40, timeout=30, message="the marketplace to show 40")
            feed.set_rows([{"sku": "G-1", "quantity": "35"}])
            wait_until(lambda: marketplace.stock("1") == 35, timeout=30, message="the marketplace to show 35")
    assert StockLevel.objects.get(location=gross, article__sku="G-1").on_hand == Decimal(35)
    run = JobRun.objects.filter(name="store_stock", subject="gross", status="succeeded").order_by("started_at").first()
    assert run.counts["counted"] == 1
    assert run.counts["bad_rows"] == ["row 3: quantity 'x' is not a number"]
