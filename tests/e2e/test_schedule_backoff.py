"""A running scheduler and worker against stores that cannot be served (a
platform answering 401 for bad credentials, a URL where nothing listens):
each failing order import is retried at its interval with exponential
backoff, not on every 0.2 s tick; Sync health turns red with the reason and
a link, and green again once a person fixed the cause and released it."""
from __future__ import annotations

import time

import pytest

from carts.models import ExternalStore
from ops.selectors import sync_problems
from posinv.models import JobRun, ScheduleState
from posinv.services.runs import schedule_release
from tests.factories import make_location
from tests.fakes.woocommerce import FakeWooCommerce
from tests.support.carts import cart_worker_env
from tests.support.processes import free_port, started_command, started_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WINDOW = 14  # seconds of scheduler ticks every 0.2 s: 70 ticks


def order_calls(woo: FakeWooCommerce) -> list[float]:
    return [path for method, path, status in woo.requests if "/orders" in path]


def test_failing_imports_back_off_in_a_running_system_and_health_says_so_until_released(rq_mode):
    shop = make_location(code="SHOP")
    with FakeWooCommerce() as woo:
        refused = ExternalStore.objects.create(
            code="woo401", name="Woo with a revoked key", platform="woocommerce", url=woo.url, import_orders=True,
            order_interval_seconds=1, secrets={"consumer_key": "ck_revoked", "consumer_secret": "cs_revoked"})
        unreachable = ExternalStore.objects.create(
            code="nowhere", name="Woo on a dead host", platform="woocommerce", url=f"http://127.0.0.1:{free_port()}",
            import_orders=True, order_interval_seconds=1,
            secrets={"consumer_key": woo.key, "consumer_secret": woo.secret})
        for store in (refused, unreachable):
            store.locations.add(shop)
        env = cart_worker_env(POSINV_SCHEDULE_BACKOFF_MAX_SECONDS="60")

        with started_worker(env=env) as worker, \
                started_command("run_scheduler", "--interval", "0.2", env=env, name="scheduler") as scheduler:
            wait_until(lambda: order_calls(woo), timeout=30, message=f"the first import; worker:\n{worker.log()}")
            time.sleep(WINDOW)
            calls = len(order_calls(woo))
            failed = JobRun.objects.filter(name="cart_orders_import", subject="nowhere", status="failed").count()
            states = {s.subject: s for s in ScheduleState.objects.filter(job="cart_orders_import")}

            # At 1 s, 2 s, 4 s, 8 s after each failure: 4 or 5 tries in 14 s, not 70.
            assert 3 <= calls <= 5, (calls, scheduler.log())
            assert 3 <= failed <= 5, failed
            assert JobRun.objects.filter(status="skipped").count() == 0
            assert states["woo401"].failures_in_row >= 3 and states["nowhere"].failures_in_row >= 3
            assert "401" in states["woo401"].last_error
            sync = sync_problems()
            assert sync["status"] == "red"
            reasons = {p["subject"]: p["reason"] for p in sync["problems"]}
            assert reasons["cart-orders:woo401"].startswith("cart-orders:woo401 failed ")
            assert "in a row (next try " in reasons["cart-orders:woo401"]
            assert "cart-orders:nowhere" in reasons

            # A person puts the right key in and releases the schedule: it runs at the next tick.
            refused.secrets = {"consumer_key": woo.key, "consumer_secret": woo.secret}
            refused.save()
            schedule_release(state_ids=[states["woo401"].pk], released_by="test")
            wait_until(lambda: JobRun.objects.filter(name="cart_orders_import", subject="woo401",
                                                     status="succeeded").exists(),
                       timeout=30, message=f"the released import; worker:\n{worker.log()}")

    assert "cart-orders:woo401" not in {p["subject"] for p in sync_problems()["problems"]}
    assert ScheduleState.objects.get(key="cart-orders:woo401").failures_in_row == 0
