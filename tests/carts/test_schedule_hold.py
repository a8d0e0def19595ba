"""A scheduled download that would zero most products is held: it is not
retried on any later tick until a person confirms it, Sync health and
/healthz say so in words with a link, and they are green again after."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from carts.models import ExternalStore, StoreDownload
from carts.services.links import links_match
from ops.selectors import sync_problems
from posinv.models import JobRun, ScheduleState, StockLevel
from posinv.scheduling import scheduler_tick
from tests.carts.conftest import articles
from tests.factories import make_location
from tests.fakes.wholesaler import FakeWholesaler

pytestmark = pytest.mark.django_db
SKUS = [f"Z-{n}" for n in range(5)]


@pytest.fixture
def held_store(sync_on):
    with FakeWholesaler() as wholesaler:
        articles(*SKUS)
        warehouse = make_location(code="WH1", name="Main warehouse", kind="warehouse")
        wholesaler.set_rows([{"sku": sku, "quantity": "9"} for sku in SKUS])
        store = ExternalStore.objects.create(
            code="whs", name="Wholesaler", kind="wholesaler", platform="feed", url=f"{wholesaler.url}/feed.csv",
            stock_direction="download", stock_target=warehouse, stock_interval_seconds=60)
        links_match(store=store)
        start = timezone.now()
        assert "store-stock:whs" in scheduler_tick(now=start)  # in-process: the first download runs here
        wholesaler.set_rows([{"sku": sku, "quantity": "0" if n < 4 else "9"} for n, sku in enumerate(SKUS)])
        assert "store-stock:whs" in scheduler_tick(now=start + timedelta(seconds=61))
        yield store, wholesaler, start


def test_a_held_download_is_not_retried_on_any_later_tick(held_store):
    store, wholesaler, start = held_store
    run = JobRun.objects.filter(name="store_stock").order_by("-pk").first()
    assert run.status == "held"
    assert "4 of 5 products would drop to zero" in run.error
    calls = len(wholesaler.requests)

    for minutes in range(2, 240, 7):
        assert "store-stock:whs" not in scheduler_tick(now=start + timedelta(minutes=minutes))

    assert len(wholesaler.requests) == calls
    assert set(StockLevel.objects.values_list("on_hand", flat=True)) == {Decimal(9)}


def test_health_says_a_held_download_waits_for_a_person_and_is_green_once_confirmed(held_store, admin_client):
    sync = sync_problems()
    assert sync["status"] == "amber"
    [problem] = [p for p in sync["problems"] if p["subject"] == "store-stock:whs"]
    assert "waits for a person" in problem["reason"] and "would drop to zero" in problem["reason"]
    assert admin_client.get(problem["link"]).status_code == 200
    page = admin_client.get("/ops/health/").content.decode()
    assert 'data-schedule="store-stock:whs" data-status="amber"' in page

    held = StoreDownload.objects.get(store=held_store[0], state="held")
    answer = admin_client.post("/admin/carts/storedownload/",
                               {"action": "apply_held", "_selected_action": [held.pk]}, follow=True)

    assert answer.status_code == 200
    assert StoreDownload.objects.get(pk=held.pk).state == "applied"
    assert sorted(StockLevel.objects.values_list("on_hand", flat=True)) == [0, 0, 0, 0, 9]
    assert ScheduleState.objects.get(key="store-stock:whs").held_since is None
    assert sync_problems() == {"status": "green", "problems": []}


def test_confirming_needs_the_confirm_permission(held_store, client, django_user_model):
    viewer = django_user_model.objects.create_user(username="viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_storedownload"))
    client.force_login(viewer)
    held = StoreDownload.objects.get(store=held_store[0], state="held")

    answer = client.post("/admin/carts/storedownload/",
                         {"action": "apply_held", "_selected_action": [held.pk]}, follow=True)

    assert answer.status_code == 200
    assert StoreDownload.objects.get(pk=held.pk).state == "held"
    assert ScheduleState.objects.get(key="store-stock:whs").held_since is not None
    assert JobRun.objects.filter(name="store_stock", status="succeeded").count() == 1  # only the first download


def test_healthz_reports_the_held_download_without_failing_the_web_process(held_store, client):
    answer = client.get("/healthz")

    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["sync"]["status"] == "amber"
    [problem] = [p for p in body["sync"]["problems"] if p["subject"] == "store-stock:whs"]
    assert problem["check"] == "schedule" and "waits for a person" in problem["reason"]
    assert problem["link"].startswith("http://testserver/admin/posinv/schedulestate/?key=store-stock")
