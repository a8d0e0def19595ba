"""The sync-health dashboard's figures at chain scale: fixed queries vs one
query set per object.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_g \\
        .venv/bin/python bench/ops_dashboard.py [--registers 200] [--cabinets 50] [--stores 20] [--moves 100000]

A fresh database with `--registers` registers (60 received entries each:
applied, a few pending, one failed every fifth register), `--cabinets`
cabinets of 40 trays, `--stores` carts with 250 web-stack entries each (sent
with a lag, waiting, throttled, failed) and `--moves` stock moves posted
through the ledger. Then, in the same run:

- ours: `ops.selectors.sync_health_get` + the 24-hour chart + the /metrics
  text (what the dashboard and a Prometheus scrape cost);
- baseline: the same figures computed the obvious way, a few queries per
  register, cabinet and store (what an unannotated admin page does).

Prints medians of 5 runs, the queries of each, and the ratios."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._setup import django_for_bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=int, default=200)
    parser.add_argument("--cabinets", type=int, default=50)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--moves", type=int, default=100_000)
    args = parser.parse_args()
    vendor = django_for_bench("ops")

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from cabinets.models import Tray, WeighingCabinet
    from carts.models import ExternalStore, StackEntry
    from ops.charts import activity_chart_svg
    from ops.metrics import metrics_render
    from ops.selectors import activity_24h, sync_health_get
    from pos.models import CashRegister, SyncEntry
    from posinv.models import Article, Location, StockMove
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post

    now = timezone.now()
    started = time.monotonic()
    store_loc = Location.objects.create(code="S1", name="Store 1")
    articles = Article.objects.bulk_create([Article(sku=f"A-{n:05d}", name=f"Article {n}") for n in range(500)])
    registers = CashRegister.objects.bulk_create(
        [CashRegister(code=f"R{n:04d}", name=f"Till {n}", location=store_loc, last_success_at=now)
         for n in range(args.registers)])
    entries = []
    for index, register in enumerate(registers):
        for no in range(1, 61):
            state = "applied" if no <= 57 else "pending"
            if no == 57 and index % 5 == 0:
                state = "failed"
            entries.append(SyncEntry(register=register, direction="in", entry_no=no, table="customer",
                                     record_id=f"customer:{no}", record={}, record_hash="x", state=state))
    SyncEntry.objects.bulk_create(entries, batch_size=2000)
    cabinet_locations = Location.objects.bulk_create(
        [Location(code=f"CAB{n:03d}", name=f"Cabinet {n}", kind="cabinet") for n in range(args.cabinets)])
    cabinets = WeighingCabinet.objects.bulk_create(
        [WeighingCabinet(code=f"C{n:03d}", location=loc, last_reading_at=now)
         for n, loc in enumerate(cabinet_locations)])
    Tray.objects.bulk_create(
        [Tray(cabinet=cabinet, tray_id=f"T-{t:02d}", state="filled", last_read_at=now - timedelta(minutes=t),
              held_quantity=Decimal(3) if t == 39 else None) for cabinet in cabinets for t in range(40)],
        batch_size=2000)
    stores = ExternalStore.objects.bulk_create(
        [ExternalStore(code=f"shop{n:02d}", name=f"Shop {n}", platform="webhook", url="https://s.example",
                       sync_inventory=True) for n in range(args.stores)])
    stack = []
    for store in stores:
        for n in range(250):
            state = "sent" if n < 230 else ("waiting" if n < 245 else "failed")
            stack.append(StackEntry(store=store, article=articles[n % len(articles)], quantity=n, state=state,
                                    next_attempt_at=now, sent_at=now - timedelta(minutes=n % 1400)
                                    if state == "sent" else None,
                                    last_response="HTTP 429" if n in (240, 241) else ""))
    StackEntry.objects.bulk_create(stack, batch_size=2000)
    origin = StockOrigin("register", "R0000")
    for start in range(0, args.moves, 500):
        stock_moves_post(moves=[
            MoveSpec(kind="sale", idempotency_key=f"bench:{n}", sku=articles[n % len(articles)].sku,
                     location_id=store_loc.pk, quantity=Decimal(-1)) for n in range(start, min(start + 500, args.moves))
        ], origin=origin)
    # Spread the cart sends over the last 24 hours. Moves stay in this hour: they are append-only (a
    # trigger refuses UPDATE), and the chart's query scans the same rows wherever they fall in the day.
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("UPDATE carts_stackentry SET created_at = sent_at - (id % 30) * interval '1 second' "
                           "WHERE sent_at IS NOT NULL")
        else:
            cursor.execute("UPDATE carts_stackentry SET created_at = datetime(sent_at, '-' || (id % 30) || ' seconds') "
                           "WHERE sent_at IS NOT NULL")
    print(f"set-up: {vendor}, {args.registers} registers ({len(entries)} entries), {args.cabinets} cabinets "
          f"({args.cabinets * 40} trays), {args.stores} stores ({len(stack)} stack entries), {args.moves} moves "
          f"in {time.monotonic() - started:.1f} s")

    def ours():
        health = sync_health_get()
        activity_chart_svg(buckets=activity_24h(now=health.now))
        metrics_render(health=health)
        return health

    def baseline():
        """Per object: a query per figure, as an unannotated page does."""
        out = []
        for register in CashRegister.objects.all():
            received = SyncEntry.objects.filter(register=register, direction="in")
            out.append((register.code, received.filter(state__in=["pending", "waiting"]).count(),
                        received.filter(state="failed").count(),
                        received.filter(state__in=["pending", "waiting"]).order_by("created_at")
                        .values_list("created_at", flat=True).first()))
        for cabinet in WeighingCabinet.objects.all():
            trays = list(cabinet.trays.all())
            out.append((cabinet.code, sum(1 for t in trays if t.held_quantity is not None)))
        for store in ExternalStore.objects.all():
            open_ = StackEntry.objects.filter(store=store, state__in=["waiting", "sending"])
            out.append((store.code, open_.count(), StackEntry.objects.filter(store=store, state="failed").count(),
                        open_.filter(last_response__contains="429").count(),
                        open_.order_by("created_at").values_list("created_at", flat=True).first()))
        hours = []
        for h in range(24):
            end = now - timedelta(hours=h)
            hours.append(StockMove.objects.filter(created_at__gte=end - timedelta(hours=1), created_at__lt=end).count())
            hours.append(StackEntry.objects.filter(sent_at__gte=end - timedelta(hours=1), sent_at__lt=end).count())
        return out, hours

    def measure(fn):
        fn()  # warm
        times = []
        with CaptureQueriesContext(connection) as queries:
            fn()
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), len(queries.captured_queries)

    health = ours()
    assert len(health.registers) == args.registers and health.sections["registers"] == "red"
    assert sum(s.throttled for s in health.stores) == 2 * args.stores
    our_time, our_queries = measure(ours)
    base_time, base_queries = measure(baseline)
    print(f"ours (dashboard + chart + /metrics): {our_time * 1000:.1f} ms, {our_queries} queries")
    print(f"baseline (queries per object):       {base_time * 1000:.1f} ms, {base_queries} queries")
    print(f"ratio ours / baseline: time {our_time / base_time:.3f}, queries {our_queries / base_queries:.4f}")


if __name__ == "__main__":
    main()
