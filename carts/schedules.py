"""What the carts app needs run periodically (the scheduler tick asks).
Order imports and the stores' stock and price runs are periodic schedules:
when each is due (interval, backoff after failures, held for a person) is
the scheduler's one rule (posinv/scheduling.py)."""
from __future__ import annotations

import math

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from carts.models import ExternalStore
from carts.services.stack import stack_due_stores
from carts.services.warehouses import store_downloads_unfinished
from posinv.scheduling import Due


def carts_due(*, now=None):
    """A sweep for every store with due entries (a lost wake-up, a backoff
    or a Retry-After that has passed: the web stack backs off per entry),
    and the order import, stock and price schedules of every active store."""
    now = now or timezone.now()
    for store_id in stack_due_stores(now=now):
        yield Due(key=f"stack-sweep:{store_id}", func="carts.jobs.stack_sweep_job", kwargs={"store_id": store_id},
                  queue="high", ttl=60)
    for store in ExternalStore.objects.filter(active=True, import_orders=True):
        yield Due(key=f"cart-orders:{store.code}", func="carts.jobs.orders_import_job",
                  kwargs={"store_id": store.pk}, ttl=600, interval_seconds=store.order_interval_seconds,
                  run=("cart_orders_import", store.code), last_run_at=store.last_order_import_at)
    none = ExternalStore.Direction.NONE
    # A download the platform's rate limit paused (or a killed worker left)
    # goes on from its page once the limit allows, whatever the interval.
    unfinished = store_downloads_unfinished()
    # As long as the run's lease (renewed per page): a killed worker's run is
    # offered again when its lease has run out, not half an hour later; a
    # second offer while a live run holds the lease is recorded as skipped.
    store_run_ttl = max(math.ceil(settings.POSINV_STORE_LEASE_SECONDS), 10)
    sources = set(ExternalStore.objects.filter(direct_source__isnull=False).values_list("direct_source_id", flat=True))
    for store in ExternalStore.objects.filter(active=True).exclude(
            Q(stock_direction=none, price_direction=none) & ~Q(pk__in=sources)):
        kinds = []
        if store.stock_direction != none or store.pk in sources:
            kinds.append(("stock", "store-stock", "store_stock", store.stock_interval_seconds,
                          store.last_stock_run_at))
        if store.price_direction != none:
            kinds.append(("prices", "store-prices", "store_prices", store.price_interval_seconds,
                          store.last_price_run_at))
        for kind, prefix, job, interval, last_run_at in kinds:
            key, func = f"{prefix}:{store.code}", f"carts.jobs.{job}_job"
            if (store.pk, kind) in unfinished:
                # Goes on from its page as soon as the limit allows: a condition, not the interval.
                resume_at = unfinished[(store.pk, kind)]
                if resume_at is None or resume_at <= now:
                    yield Due(key=key, func=func, kwargs={"store_id": store.pk}, queue="low", ttl=store_run_ttl)
                continue
            yield Due(key=key, func=func, kwargs={"store_id": store.pk}, queue="low", ttl=store_run_ttl,
                      interval_seconds=interval, run=(job, store.code), last_run_at=last_run_at)
