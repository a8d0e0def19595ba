"""Store sync: a superior store (the fake BaseLinker-style API on real HTTP)
with 50,000 linked products of which 1% changed. Times one full pull run of
`store_stock_run` (fetch every page, post counts only where the figure
differs) and, in the same run, a naive pull that posts a count for every
product; prints both, the moves each wrote, and the ratio.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_d .venv/bin/python bench/store_sync.py
"""
from __future__ import annotations

import argparse
import os
import random
import time
from decimal import Decimal

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    vendor = django_for_bench("stores")

    from carts.models import ExternalStore, ProductLink
    from carts.services.stores import store_connector
    from carts.services.warehouses import store_stock_run
    from posinv.models import Article, Location, StockMove
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from tests.fakes.baselinker import FakeBaseLinker

    n = args.products
    fake = FakeBaseLinker(per_minute=100_000).start()
    warehouse = Location.objects.create(code="WH", name="Warehouse", kind="warehouse")
    Article.objects.bulk_create([Article(sku=f"S-{i:06d}", name=f"S {i}") for i in range(n)], batch_size=5000)
    ids = dict(Article.objects.values_list("sku", "pk"))
    rng = random.Random(5)
    stock = {i: rng.randint(0, 500) for i in range(n)}
    for i in range(n):
        fake.add(pid=str(i + 1), sku=f"S-{i:06d}", stock=stock[i])
    store = ExternalStore.objects.create(
        code="sup", name="Superior", kind="store", platform="baselinker", url=f"{fake.url}/connector.php",
        params={"inventory_id": fake.inventory_id, "warehouse_id": fake.warehouse}, secrets={"token": fake.token},
        stock_direction="download", stock_target=warehouse)
    ProductLink.objects.bulk_create([ProductLink(store=store, article_id=ids[f"S-{i:06d}"], remote_ref=str(i + 1),
                                                 remote_sku=f"S-{i:06d}") for i in range(n)], batch_size=5000)
    for start in range(0, n, 1000):
        stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key=f"init:{i}", article_id=ids[f"S-{i:06d}"],
                                         location_id=warehouse.pk, counted=Decimal(stock[i]))
                                for i in range(start, min(start + 1000, n))], origin=StockOrigin("user", "bench"))

    def change_one_percent(seed: int) -> int:
        picked = random.Random(seed).sample(range(n), int(n * args.changed))
        with fake.lock:
            for i in picked:
                fake.products[str(i + 1)]["stock"][fake.warehouse] += 1 + i % 7
        return len(picked)

    changed = change_one_percent(1)
    before = StockMove.objects.count()
    started = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        run = profile.runcall(store_stock_run, store=store)
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        run = store_stock_run(store=store)
    ours = time.perf_counter() - started
    ours_moves = StockMove.objects.count() - before
    assert run.counted == changed, (run.counted, changed)

    change_one_percent(2)
    before = StockMove.objects.count()
    started = time.perf_counter()
    products = list(store_connector(store=store).list_products())
    for start in range(0, len(products), 1000):
        stock_moves_post(moves=[MoveSpec(kind="count", idempotency_key=f"naive:{p.ref}", article_id=ids[p.sku],
                                         location_id=warehouse.pk, counted=Decimal(p.quantity))
                                for p in products[start:start + 1000]], origin=StockOrigin("store", "sup"))
    naive = time.perf_counter() - started
    naive_moves = StockMove.objects.count() - before
    fake.stop()
    print(f"machine: {os.cpu_count()} cores; database: {vendor}; {n} products, {changed} changed "
          f"({args.changed:.0%}); 50 pages of 1,000 over HTTP in both runs")
    print(f"store_stock_run (differences only): {ours:.2f} s, {ours_moves} moves")
    print(f"naive (a count for every product):  {naive:.2f} s, {naive_moves} moves")
    print(f"ratio naive/ours: time {naive / ours:.1f}x, moves {naive_moves / max(ours_moves, 1):.0f}x")


if __name__ == "__main__":
    main()
