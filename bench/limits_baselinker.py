"""BaseLinker at its documented limit: how long sending a whole catalogue
(Send QOH to an inferior store: every linked product's available-to-sell,
1,000 products per updateInventoryProductsStock call) takes against the fake
BaseLinker-style API (real HTTP) enforcing 100 requests in any rolling
window, compared with the least that limit allows: with C calls of which at
most 100 fit in any window W, the last call cannot leave before
(ceil(C / 100) - 1) x W. Prints both, the ratio and whether the token was
ever blocked.

The window is BaseLinker's real minute unless `--window` scales it (the fake
and POSINV_RATE_WINDOW_SCALE alike; say so when quoting a scaled figure).
Without Redis (as here) the window lives in the database. Sweeps run in this
process one after another, as the workers would, sleeping until the next
entry is due (the scheduler would offer it within a tick).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_d .venv/bin/python bench/limits_baselinker.py
"""
from __future__ import annotations

import argparse
import math
import os
import time

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=150_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of the rolling window (60: real)")
    args = parser.parse_args()
    os.environ["POSINV_RATE_WINDOW_SCALE"] = str(args.window / 60)
    vendor = django_for_bench("limits_bl")

    from django.db import transaction
    from django.utils import timezone

    from carts.models import ExternalStore, ProductLink, StackEntry
    from carts.services.stack import stack_entries_add, stack_sweep
    from posinv.models import Article, Location
    from tests.fakes.baselinker import FakeBaseLinker

    n = args.products
    fake = FakeBaseLinker(window_seconds=args.window).start()
    fake.add_many((str(i), f"S-{i:06d}", 5, 1.0) for i in range(1, n + 1))
    warehouse = Location.objects.create(code="WH", name="Warehouse", kind="warehouse")
    Article.objects.bulk_create([Article(sku=f"S-{i:06d}", name=f"S {i}") for i in range(1, n + 1)],
                                batch_size=10_000)
    ids = dict(Article.objects.values_list("sku", "pk"))
    store = ExternalStore.objects.create(
        code="market", name="Marketplace", kind="store", platform="baselinker", url=f"{fake.url}/connector.php",
        params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse}, secrets={"token": fake.token},
        stock_direction="send")
    store.locations.add(warehouse)
    ProductLink.objects.bulk_create([ProductLink(store=store, article_id=ids[f"S-{i:06d}"], remote_ref=str(i))
                                     for i in range(1, n + 1)], batch_size=10_000)
    open_states = [StackEntry.State.WAITING, StackEntry.State.SENDING]

    started = time.perf_counter()
    with transaction.atomic():
        stack_entries_add(store=store, article_ids=list(ids.values()), origin=("user", "send-qoh"))
    queued = time.perf_counter() - started  # without Redis the wake-up's sweep runs inside this, after commit
    sweeps = 0
    while True:
        stack_sweep(store_id=store.pk, time_budget=30)
        sweeps += 1
        soonest = (StackEntry.objects.filter(store=store, state__in=open_states).order_by("next_attempt_at")
                   .values_list("next_attempt_at", flat=True).first())
        if soonest is None:
            break
        time.sleep(max((soonest - timezone.now()).total_seconds(), 0) + 0.01)
    elapsed = time.perf_counter() - started
    fake.stop()

    calls = len(fake.update_calls)
    stamps = sorted(c.at for c in fake.calls)
    busiest = max((sum(1 for t in stamps[i:] if t - start < args.window) for i, start in enumerate(stamps)),
                  default=0)
    wrong = sum(1 for p in fake.products.values() if p["stock"][fake.warehouse] != 0)
    least = (math.ceil(calls / 100) - 1) * args.window
    print(f"machine: {os.cpu_count()} cores; database: {vendor} (window kept there, no Redis); {n} products; "
          f"window {args.window:g} s for 100 requests{' (time-scaled)' if args.window != 60 else ''}")
    print(f"update calls: {calls} (at most 1,000 products each); sweeps: {sweeps}; "
          f"blocked-token answers: {fake.blocked_answers}; products left wrong: {wrong}")
    print(f"most requests in any {args.window:g} s: {busiest} (the limit: 100); "
          f"queueing the catalogue and the first inline sweep: {queued:.1f} s")
    print(f"full catalogue sent in {elapsed:.1f} s; least the limit allows {least:.1f} s; "
          f"ratio {elapsed / least if least else float('inf'):.2f}")


if __name__ == "__main__":
    main()
