"""What the carts app needs run periodically (the scheduler tick asks).
Order imports and the stores' stock and price runs are periodic schedules:
when each is due (interval, backoff after failures, held for a person) is
the scheduler's one rule (posinv/scheduling.py)."""
from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from carts.models import ExternalStore
from carts.services.stack import stack_due_stores
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
    sources = set(ExternalStore.objects.filter(direct_source__isnull=False).values_list("direct_source_id", flat=True))
    for store in ExternalStore.objects.filter(active=True).exclude(
            Q(stock_direction=none, price_direction=none) & ~Q(pk__in=sources)):
        if store.stock_direction != none or store.pk in sources:
            yield Due(key=f"store-stock:{store.code}", func="carts.jobs.store_stock_job",
                      kwargs={"store_id": store.pk}, queue="low", ttl=1800,
                      interval_seconds=store.stock_interval_seconds, run=("store_stock", store.code),
                      last_run_at=store.last_stock_run_at)
        if store.price_direction != none:
            yield Due(key=f"store-prices:{store.code}", func="carts.jobs.store_prices_job",
                      kwargs={"store_id": store.pk}, queue="low", ttl=1800,
                      interval_seconds=store.price_interval_seconds, run=("store_prices", store.code),
                      last_run_at=store.last_price_run_at)
