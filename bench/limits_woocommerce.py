"""WooCommerce at its documented limit: Send QOH of a full catalogue to the
fake WooCommerce (real HTTP) through the stack controller, against the
theoretical minimum the limits allow.

Limits: WooCommerce takes at most 100 items per batch call (413 above);
WooCommerce itself has no rate limit, the host adds one: the fake runs a
leaky bucket of `--host-burst` requests leaking `--host-rate` a second (429
with Retry-After above it; defaults 10 and 5/s, an assumption, not a
documented figure), and each batch takes `--server-seconds` to answer (a
real Woo host spends seconds on 100 product saves; 0.2 s here). Sent one
batch at a time (one command, no workers), the minimum is

    calls = ceil(products / 100)
    minimum = max(calls × server_seconds, (calls − burst) / rate + server_seconds)

Prints the time, the calls and 429s, and the ratio time / minimum.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_d .venv/bin/python bench/limits_woocommerce.py
"""
from __future__ import annotations

import argparse
import math
import os
import time
from decimal import Decimal

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--host-burst", type=float, default=10)
    parser.add_argument("--host-rate", type=float, default=5)
    parser.add_argument("--server-seconds", type=float, default=0.2)
    args = parser.parse_args()
    django_for_bench("woo_limits")

    from carts.models import CartSettings, ExternalStore, ProductLink, StackEntry
    from carts.services.qoh import qoh_send
    from posinv.models import Article, Location
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from tests.fakes.woocommerce import FakeWooCommerce

    n = args.products
    CartSettings.objects.create(pk=1, synch_qoh=False)
    fake = FakeWooCommerce().start()
    web = Location.objects.create(code="WEB", name="Web warehouse", kind="warehouse")
    Article.objects.bulk_create([Article(sku=f"W-{i:06d}", name=f"W {i}") for i in range(n)], batch_size=5000)
    ids = dict(Article.objects.values_list("sku", "pk"))
    refs = {f"W-{i:06d}": fake.add_product(sku=f"W-{i:06d}", stock=0)["id"] for i in range(n)}
    store = ExternalStore.objects.create(code="woo", name="Woo", platform="woocommerce", url=fake.url,
                                         sync_inventory=True,
                                         secrets={"consumer_key": fake.key, "consumer_secret": fake.secret})
    store.locations.add(web)
    ProductLink.objects.bulk_create([ProductLink(store=store, article_id=ids[sku], remote_ref=f"p:{pid}",
                                                 remote_sku=sku) for sku, pid in refs.items()], batch_size=5000)
    for start in range(0, n, 1000):
        stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key=f"init:{i}", article_id=ids[f"W-{i:06d}"],
                                         location_id=web.pk, counted=Decimal(1 + i % 50))
                                for i in range(start, min(start + 1000, n))], origin=StockOrigin("user", "bench"))
    CartSettings.objects.filter(pk=1).update(synch_qoh=True)
    with fake.lock:
        fake.faults.bucket_capacity = args.host_burst
        fake.faults.bucket_leak_per_second = args.host_rate
        fake.faults.latency = args.server_seconds
        fake.requests.clear()

    started = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        result = profile.runcall(qoh_send, store=store, time_budget=1800)
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        result = qoh_send(store=store, time_budget=1800)
    elapsed = time.perf_counter() - started
    fake.stop()

    wrong = sum(1 for i in range(n) if fake.stock(f"W-{i:06d}") != 1 + i % 50)
    calls = math.ceil(n / 100)
    minimum = max(calls * args.server_seconds,
                  max(0.0, calls - args.host_burst) / args.host_rate + args.server_seconds)
    batches = fake.count("POST", "/batch", 200)
    throttled = fake.count(status=429)
    print(f"products {n}; host limit: bucket {args.host_burst:g}, {args.host_rate:g} requests/s; "
          f"{args.server_seconds:g} s a batch")
    print(f"send QOH: {elapsed:.2f} s, sent {result.sent}, failed {result.failed}, in flight {result.waiting}, "
          f"wrong on the cart {wrong}")
    print(f"batch calls {batches} (minimum {calls}), largest {max(fake.batch_sizes)}, 429s {throttled}, "
          f"HTTP calls {len(fake.requests)}")
    print(f"theoretical minimum {minimum:.2f} s; ratio {elapsed / minimum:.2f}")
    leftover = StackEntry.objects.filter(state__in=["waiting", "sending"]).count()
    if wrong or leftover:
        raise SystemExit(f"not all sent: {wrong} wrong, {leftover} open entries")


if __name__ == "__main__":
    main()
