"""Ledger throughput: 100,000 sale lines over 1,000 articles in batches of
500 through `stock_moves_post` (moves, levels and outbox rows written), and
the naive way (one transaction per line: create the move, get or create the
level, F() update) on a 5,000-line sample, in the same run (taking turns in
20 rounds so both see the same machine). Prints lines/s
of each and the ratio, then checks the ledger (on_hand == sum of moves).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_a .venv/bin/python bench/ledger.py
"""

from __future__ import annotations

import argparse
import random
import time
from decimal import Decimal

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--articles", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--naive-lines", type=int, default=5_000)
    args = parser.parse_args()
    vendor = django_for_bench("ledger")

    from django.db import transaction
    from django.db.models import F

    import posinv.services.changes as changes
    from posinv.models import Article, Location, StockChange, StockLevel, StockMove
    from posinv.selectors import ledger_drift
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

    # The dispatcher runs in a worker, off the hot path; here it is not woken
    # so the figures are the ledger's own (the outbox rows are written).
    changes.changes_wake = lambda: None

    Article.objects.bulk_create(Article(sku=f"B-{i:05d}", name=f"Bench {i}") for i in range(args.articles))
    Location.objects.bulk_create(
        [Location(code="BENCH", name="Bench store"), Location(code="NAIVE", name="Naive store")]
    )
    bench, naive = Location.objects.get(code="BENCH"), Location.objects.get(code="NAIVE")
    article_ids = list(Article.objects.values_list("pk", flat=True))
    rng = random.Random(3)
    origin = StockOrigin(kind="register", code="BENCH")

    # Warm up (connections, statement caches) with one batch, not timed.
    stock_moves_post(
        moves=[
            MoveSpec(
                kind="sale",
                idempotency_key=f"warm-{i}",
                quantity=Decimal("-1"),
                article_id=article_ids[i],
                location_id=bench.pk,
            )
            for i in range(args.batch)
        ],
        origin=origin,
    )

    def batched(b: int) -> None:
        moves = [
            MoveSpec(
                kind="sale",
                idempotency_key=f"R1-{b}-{i}",
                quantity=Decimal(-rng.randint(1, 3)),
                article_id=rng.choice(article_ids),
                location_id=bench.pk,
                reference=f"receipt {b}",
            )
            for i in range(args.batch)
        ]
        stock_moves_post(moves=moves, origin=origin)

    def naive_line(n: int) -> None:
        article_id = rng.choice(article_ids)
        quantity = Decimal(-rng.randint(1, 3))
        with transaction.atomic():
            StockMove.objects.create(
                article_id=article_id,
                location=naive,
                kind="sale",
                quantity=quantity,
                balance_after=0,
                idempotency_key=f"naive-{n}",
                origin="register",
                origin_code="NAIVE",
            )
            level, _ = StockLevel.objects.get_or_create(article_id=article_id, location=naive)
            StockLevel.objects.filter(pk=level.pk).update(on_hand=F("on_hand") + quantity)

    # The two ways take turns in 20 rounds, so both see the same machine
    # (other processes on these 2 cores come and go during a run).
    rounds = 20
    batches, naive_lines = args.lines // args.batch, args.naive_lines
    batched_seconds = naive_seconds = 0.0
    done_batches = done_naive = 0
    for r in range(rounds):
        started = time.perf_counter()
        while done_batches < batches * (r + 1) // rounds:
            batched(done_batches)
            done_batches += 1
        batched_seconds += time.perf_counter() - started
        started = time.perf_counter()
        while done_naive < naive_lines * (r + 1) // rounds:
            naive_line(done_naive)
            done_naive += 1
        naive_seconds += time.perf_counter() - started
    batched_rate = done_batches * args.batch / batched_seconds
    naive_rate = done_naive / naive_seconds
    outbox_rows = StockChange.objects.count()

    drifting = sum(1 for _ in ledger_drift())
    print(f"database: {vendor}")
    print(
        f"batched ledger: {args.lines} lines in {args.lines // args.batch} batches of {args.batch} "
        f"over {args.articles} articles: {batched_seconds:.2f} s = {batched_rate:,.0f} lines/s "
        f"({outbox_rows} outbox rows written)"
    )
    print(f"naive (1 transaction per line): {done_naive} lines: {naive_seconds:.2f} s = {naive_rate:,.0f} lines/s")
    print(f"ratio batched/naive: {batched_rate / naive_rate:.1f}x")
    print(f"ledger check: {drifting} drifting pairs")


if __name__ == "__main__":
    main()
