"""Shopify at its documented limit: Send QOH of a whole catalogue to the
fake Shopify on real HTTP with the documented cost bucket (1,000 points,
restoring 50 a second; each `inventorySetQuantities` call costs 10 points
and carries up to 250 quantities), timed against the minimum that bucket
allows: calls × 10 points, the first 1,000 free, the rest at 50 a second.
Prints both and the ratio. Real time, not scaled: at the default 50,000
products the bucket binds for about 20 s.

Products are linked with their figure known (as after *Match products*), so
no read-back is needed; the run is `qoh_send` as the command runs it (in
process: it waits for the bucket in place).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_d .venv/bin/python bench/limits_shopify.py
"""
from __future__ import annotations

import argparse
import math
import time
from decimal import Decimal

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--capacity", type=float, default=1000)
    parser.add_argument("--restore", type=float, default=50)
    args = parser.parse_args()
    vendor = django_for_bench("shopify_limits")

    from carts.connectors.shopify import WRITE_COST, ShopifyConnector
    from carts.models import CartSettings, ExternalStore, ProductLink, StackEntry
    from carts.services.qoh import qoh_send
    from posinv.models import Article, Location
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from tests.fakes.shopify import LOCATION, FakeShopify

    n = args.products
    CartSettings.objects.create(pk=1, synch_qoh=False)
    fake = FakeShopify(cost_capacity=args.capacity, restore_rate=args.restore).start()
    web = Location.objects.create(code="WEB", name="Web", kind="warehouse")
    Article.objects.bulk_create([Article(sku=f"S-{i:06d}", name=f"S {i}") for i in range(n)], batch_size=5000)
    ids = dict(Article.objects.values_list("sku", "pk"))
    variants = {i: fake.add_variant(sku=f"S-{i:06d}", available=0) for i in range(n)}
    store = ExternalStore.objects.create(code="shop", name="Shopify", platform="shopify", url=fake.url,
                                         sync_inventory=True, params={"location_id": LOCATION},
                                         secrets={"access_token": fake.token})
    store.locations.add(web)
    ProductLink.objects.bulk_create([
        ProductLink(store=store, article_id=ids[f"S-{i:06d}"], remote_ref=variants[i].item_gid,
                    remote_sku=f"S-{i:06d}", remote_quantity=0) for i in range(n)], batch_size=5000)
    for start in range(0, n, 5000):
        stock_moves_post(moves=[MoveSpec(kind="receipt", idempotency_key=f"in:{i}", article_id=ids[f"S-{i:06d}"],
                                         location_id=web.pk, quantity=Decimal(1 + i % 40))
                                for i in range(start, min(start + 5000, n))], origin=StockOrigin("user", "bench"))

    calls = math.ceil(n / ShopifyConnector.batch_size)
    points = calls * WRITE_COST
    minimum = max(0.0, points - args.capacity) / args.restore
    fake.drain_bucket(to=args.capacity)  # a full bucket at the start, as the minimum assumes
    started = time.monotonic()
    result = qoh_send(store=store, time_budget=3600)
    elapsed = time.monotonic() - started
    wrong = sum(1 for i in range(n) if variants[i].available != 1 + i % 40)
    print(f"database: {vendor}; {n} products, bucket {args.capacity:g} points restoring {args.restore:g}/s, "
          f"{ShopifyConnector.batch_size} quantities a call at {WRITE_COST} points")
    print(f"sent {result.sent}, waiting {result.waiting}, failed {result.failed}, wrong on Shopify {wrong}; "
          f"{fake.set_calls} mutations (minimum {calls}), {fake.throttled_answers} THROTTLED answers, "
          f"{StackEntry.objects.filter(state='sent').count()} entries sent")
    print(f"Send QOH: {elapsed:.1f} s; the bucket's minimum: {minimum:.1f} s "
          f"({points} points, {args.capacity:g} at once, the rest at {args.restore:g}/s); "
          f"ratio {elapsed / minimum if minimum else float('inf'):.2f}")
    fake.stop()


if __name__ == "__main__":
    main()
