"""Cart latency: with 2 real rqworker processes (SimpleWorker) and 3 fake
carts (two Shopify, one WooCommerce, on real HTTP), post 50 stock changes a
second for 60 seconds through the ledger (one register sale per
transaction) and measure, per change and cart, the time until the cart holds
the new quantity (or a newer one: sales only lower stock, so "holds a figure
at or below the change's quantity"). Prints p50/p95/p99 and HTTP calls per
change, against the baseline of one call per change and cart (what a
stack controller without coalescing and batching makes), measured on the
same run's change count.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_d REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/cart_latency.py [--rate 50 --seconds 60]

Needs PostgreSQL and Redis (skips otherwise); uses and flushes Redis database
CART_BENCH_REDIS_DB (default 9) on REDIS_URL's server."""
from __future__ import annotations

import argparse
import bisect
import os
import random
import statistics
import subprocess
import sys
import time
from decimal import Decimal

from _setup import REPO, django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50, help="changes per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--articles", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        # make bench on SQLite runs every benchmark: say why this one cannot.
        print("cart_latency skipped: it needs real workers, DATABASE_URL=postgres://... and REDIS_URL=redis://...")
        return
    # Its own Redis database (flushed): never the one REDIS_URL names for the site.
    base = os.environ["REDIS_URL"].rsplit("/", 1)[0] if os.environ["REDIS_URL"].count("/") > 2 else os.environ[
        "REDIS_URL"]
    os.environ["REDIS_URL"] = f"{base}/{os.environ.get('CART_BENCH_REDIS_DB', '9')}"
    django_for_bench("carts")
    from django.conf import settings

    settings.POSINV_JOBS_INLINE = False  # the ledger wakes real workers through Redis
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()

    from carts.models import CartSettings, StackEntry
    from posinv.models import Article, Location
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from tests.support.loadrun import fake_cart_holds, fake_carts, percentile

    CartSettings.objects.create(pk=1, synch_qoh=True)
    web = Location.objects.create(code="WEB", name="Web warehouse", kind="warehouse")
    skus = [f"L-{n:04}" for n in range(args.articles)]
    Article.objects.bulk_create(Article(sku=sku, name=sku) for sku in skus)
    start_qty = 1_000_000
    _stores, fakes = fake_carts(location=web, skus=skus, available=start_qty)
    stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key=f"init:{sku}", sku=sku, location_id=web.pk,
                                     counted=Decimal(start_qty)) for sku in skus], origin=StockOrigin("user", "bench"))

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "POSINV_JOBS_INLINE": "",
           "LOG_LEVEL": "WARNING", "POSINV_SCHEDULER_TICK_SECONDS": "1"}
    children = [
        subprocess.Popen([sys.executable, "manage.py", "rqworker", "high", "default", "low", "--worker-class",
                          "rq.worker.SimpleWorker"], cwd=REPO, env=env, stdout=_log(f"worker{n}"),
                         stderr=subprocess.STDOUT, start_new_session=True)
        for n in range(args.workers)
    ]
    children.append(subprocess.Popen([sys.executable, "manage.py", "run_scheduler"], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    try:
        time.sleep(2)
        for fake in fakes:
            with fake.lock:
                fake.holds.clear()
                fake.requests.clear()
        rng = random.Random(11)
        level = dict.fromkeys(skus, start_qty)
        changes: list[tuple[float, str, int]] = []
        interval = 1.0 / args.rate
        total = int(args.rate * args.seconds)
        begin = time.monotonic()
        print(f"posting {total} changes at {args.rate:g}/s over {len(skus)} articles to {len(fakes)} carts "
              f"with {args.workers} workers ...", flush=True)
        for n in range(total):
            due = begin + n * interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            sku = rng.choice(skus)
            level[sku] -= 1
            stamp = time.monotonic()
            stock_moves_post(moves=[MoveSpec(kind="sale", idempotency_key=f"R1:{n}", sku=sku, location_id=web.pk,
                                             quantity=Decimal(-1))], origin=StockOrigin("register", "R1"))
            changes.append((stamp, sku, level[sku]))
        posted_in = time.monotonic() - begin
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(fake_cart_holds(fake, sku) == level[sku] for fake in fakes for sku in skus):
                break
            time.sleep(0.2)
        settled = all(fake_cart_holds(fake, sku) == level[sku] for fake in fakes for sku in skus)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)

    latencies = []
    missing = 0
    for fake in fakes:
        by_sku: dict[str, tuple[list[float], list[int]]] = {}
        for stamp, sku, quantity in sorted(fake.holds):
            times, quantities = by_sku.setdefault(sku, ([], []))
            times.append(stamp)
            quantities.append(quantity)
        for stamp, sku, quantity in changes:
            times, quantities = by_sku.get(sku, ([], []))
            index = bisect.bisect_left(times, stamp)
            found = next((times[i] for i in range(index, len(times)) if quantities[i] <= quantity), None)
            if found is None:
                missing += 1
            else:
                latencies.append(found - stamp)
    writes = sum(fake.count(method="POST") for fake in fakes)
    calls = sum(len(fake.requests) for fake in fakes)
    baseline_calls = len(changes) * len(fakes)
    print(f"machine: {os.cpu_count()} cores; posted {len(changes)} changes in {posted_in:.1f}s "
          f"({len(changes) / posted_in:.1f}/s); all carts settled: {settled}; unmatched change-cart pairs: {missing}")
    print(f"latency change -> cart holds it (s), {len(latencies)} change-cart pairs: "
          f"p50 {percentile(latencies, 0.50):.3f}  p95 {percentile(latencies, 0.95):.3f}  "
          f"p99 {percentile(latencies, 0.99):.3f}  max {max(latencies):.3f}  mean {statistics.mean(latencies):.3f}")
    print(f"HTTP calls to the carts: {calls} ({writes} writes) = {calls / len(changes):.3f} per change "
          f"({calls / baseline_calls:.3f} per change and cart)")
    print(f"baseline without coalescing/batching: {baseline_calls} calls = {len(fakes)} per change; "
          f"ratio ours/baseline = {calls / baseline_calls:.3f}")
    print(f"stack entries: {StackEntry.objects.count()}, sent {StackEntry.objects.filter(state='sent').count()}, "
          f"failed {StackEntry.objects.filter(state='failed').count()}")
    for fake in fakes:
        fake.stop()


def _log(name: str):
    """Children's output goes to files when BENCH_LOG_DIR is set (for digging), else nowhere."""
    folder = os.environ.get("BENCH_LOG_DIR")
    if not folder:
        return subprocess.DEVNULL
    return open(os.path.join(folder, f"cart_latency-{name}.log"), "wb")  # noqa: SIM115


if __name__ == "__main__":
    main()
