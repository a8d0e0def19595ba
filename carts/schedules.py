"""What the carts app needs run periodically (the scheduler tick asks)."""
from __future__ import annotations

import math

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from carts.models import ExternalStore
from carts.services.stack import stack_due_stores
from carts.services.warehouses import store_downloads_unfinished
from posinv.scheduling import Due, is_due


def carts_due(*, now=None):
    """A sweep for every store with due entries (a lost wake-up, a backoff
    or a Retry-After that has passed), and order imports by interval."""
    now = now or timezone.now()
    for store_id in stack_due_stores(now=now):
        yield Due(key=f"stack-sweep:{store_id}", func="carts.jobs.stack_sweep_job", kwargs={"store_id": store_id},
                  queue="high", ttl=60)
    for store in ExternalStore.objects.filter(active=True, import_orders=True):
        if is_due(store.last_order_import_at, store.order_interval_seconds, now):
            yield Due(key=f"cart-orders:{store.code}", func="carts.jobs.orders_import_job",
                      kwargs={"store_id": store.pk}, ttl=600)
    none = ExternalStore.Direction.NONE
    # A download the platform's rate limit paused (or a killed worker left)
    # goes on from its page once the limit allows, whatever the interval.
    unfinished = store_downloads_unfinished()
    # As long as the run's lease (renewed per page): a killed worker's run is
    # offered again when its lease has run out, not half an hour later; a
    # second offer while a live run holds the lease is recorded as skipped.
    store_run_ttl = max(math.ceil(settings.POSINV_STORE_LEASE_SECONDS), 10)

    def due(store, kind: str, last_run) -> bool:
        if (store.pk, kind) in unfinished:
            resume_at = unfinished[(store.pk, kind)]
            return resume_at is None or resume_at <= now
        interval = store.stock_interval_seconds if kind == "stock" else store.price_interval_seconds
        return is_due(last_run, interval, now)

    sources = set(ExternalStore.objects.filter(direct_source__isnull=False).values_list("direct_source_id", flat=True))
    for store in ExternalStore.objects.filter(active=True).exclude(
            Q(stock_direction=none, price_direction=none) & ~Q(pk__in=sources)):
        feeds = store.stock_direction != none or store.pk in sources
        if feeds and due(store, "stock", store.last_stock_run_at):
            yield Due(key=f"store-stock:{store.code}", func="carts.jobs.store_stock_job",
                      kwargs={"store_id": store.pk}, queue="low", ttl=store_run_ttl)
        if store.price_direction != none and due(store, "prices", store.last_price_run_at):
            yield Due(key=f"store-prices:{store.code}", func="carts.jobs.store_prices_job",
                      kwargs={"store_id": store.pk}, queue="low", ttl=store_run_ttl)
