"""Report queries on a year of sales: about 2 million receipt lines over
5,000 articles and 20 locations (500,000 receipts, 20,000 customers,
100,000 stock levels), generated server-side with INSERT ... SELECT over
generate_series into a throw-away PostgreSQL database; the year ends today,
so today's lines are read raw, as in production.

The daily rollup is built once (`sales_rollup_rebuild`, timed), then each
report page's query (backoffice.selectors.reports) is timed three ways in
the same run: reading whole past days from the rollup (the default path),
the old raw-SQL path over the receipt lines (the rollup's state hidden, so
every day is read from the lines), and, for the 30-day windows and the
year's top articles, a naive Python aggregation of the same rows (fetched
through the ORM and summed in dicts). The answers are compared, so the
figures are of the same answer. Target: every report under 1 s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_f .venv/bin/python bench/reports.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from _setup import django_for_bench

CENT, QTY = Decimal("0.01"), Decimal("0.001")


def timed(func, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def generate(*, lines: int, articles: int, locations: int, days: int, end: date) -> None:
    from django.db import connection

    from backoffice.models import Supplier, SupplierArticle
    from pos.models import CashRegister
    from posinv.models import Article, Location, StockLevel

    started = time.perf_counter()
    locs = Location.objects.bulk_create(Location(code=f"L{i:02d}", name=f"Store {i}") for i in range(1, locations + 1))
    registers = CashRegister.objects.bulk_create(
        CashRegister(code=f"R{i:02d}", name=f"Till {i}", location=loc) for i, loc in enumerate(locs, start=1)
    )
    arts = Article.objects.bulk_create(
        (Article(sku=f"SKU{i:05d}", name=f"Article {i}", category=f"cat{i % 50:02d}") for i in range(articles)),
        batch_size=5000,
    )
    supplier = Supplier.objects.create(code="BULK", name="Bulk supplier")
    SupplierArticle.objects.bulk_create(
        (
            SupplierArticle(
                supplier=supplier, article=a, supplier_sku=a.sku, cost=Decimal(1 + i % 50) * Decimal("0.30")
            )
            for i, a in enumerate(arts)
            if i % 5 != 0  # a fifth has no known cost
        ),
        batch_size=5000,
    )
    StockLevel.objects.bulk_create(
        (
            StockLevel(article=a, location=loc, on_hand=Decimal((i * 7 + j * 13) % 120))
            for i, a in enumerate(arts)
            for j, loc in enumerate(locs)
        ),
        batch_size=10000,
    )
    first_article = arts[0].pk
    register_ids = ",".join(str(r.pk) for r in registers)
    receipts = lines // 4
    start = end - timedelta(days=days - 1)
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.42)")
        cur.execute(
            "INSERT INTO pos_customer (customer_no, name, email, card_no, updated_at) "
            "SELECT 'C' || i, 'Customer ' || i, 'c' || i || '@example.com', 'CARD' || i, now() "
            "FROM generate_series(1, 20000) i"
        )
        cur.execute("SELECT min(id) FROM pos_customer")
        first_customer = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO pos_receipt (register_id, receipt_no, customer_id, total, currency, created_at, source, "
            "recorded_at) "
            f"SELECT (ARRAY[{register_ids}])[1 + (i %% %s)], 'B' || i, "
            "CASE WHEN random() < 0.2 THEN %s + floor(random() * 20000)::int END, 0, 'EUR', "
            # Receipts are recorded in time order, as tills produce them.
            "%s::timestamptz + ((i - 1 + random()) / %s) * (%s * interval '1 day'), 'sync', now() "
            "FROM generate_series(1, %s) i",
            [locations, first_customer, start.isoformat() + "T00:00:00Z", receipts, days, receipts],
        )
        # Popularity is skewed (random()^2): a few best sellers, a long tail.
        cur.execute(
            "WITH g AS MATERIALIZED (SELECT r.id AS rid, ln, %s + floor(power(random(), 2) * %s)::int AS aid, "
            "random() AS rq, random() AS rd FROM pos_receipt r CROSS JOIN generate_series(1, 4) ln) "
            "INSERT INTO pos_receiptline "
            "(receipt_id, line_no, article_id, sku, barcode, quantity, unit_price, discount) "
            "SELECT g.rid, g.ln, a.id, a.sku, '', "
            "CASE WHEN g.rq < 0.01 THEN -1 ELSE 1 + floor(g.rq * 3) END, "
            "(1 + (a.id - %s) %% 50) * 0.50, CASE WHEN g.rd < 0.05 THEN 0.10 ELSE 0 END "
            "FROM g JOIN posinv_article a ON a.id = g.aid",
            [first_article, articles, first_article],
        )
        cur.execute(
            "UPDATE pos_receipt r SET total = s.total FROM "
            "(SELECT receipt_id, sum(quantity * unit_price - discount) AS total "
            "FROM pos_receiptline GROUP BY receipt_id) s WHERE s.receipt_id = r.id"
        )
        cur.execute("ANALYZE")
        cur.execute("SELECT count(*) FROM pos_receiptline")
        count = cur.fetchone()[0]
    print(f"generated {count:,} receipt lines, {receipts:,} receipts in {time.perf_counter() - started:.1f} s")


def naive_rows(window, fields):
    from pos.models import ReceiptLine

    return (
        ReceiptLine.objects.filter(receipt__created_at__gte=window.start, receipt__created_at__lt=window.end)
        .values_list(*fields)
        .iterator(chunk_size=10000)
    )


def money(v):
    return Decimal(v).quantize(CENT)


def naive_sales_by_period(window):
    out = defaultdict(lambda: [Decimal(0), Decimal(0), set()])
    for created, code, receipt_id, qty, price, disc in naive_rows(
        window,
        [
            "receipt__created_at",
            "receipt__register__location__code",
            "receipt_id",
            "quantity",
            "unit_price",
            "discount",
        ],
    ):
        row = out[(created.date(), code)]
        row[0] += qty
        row[1] += qty * price - disc
        row[2].add(receipt_id)
    return [
        {"period": p, "location": c, "quantity": v[0].quantize(QTY), "revenue": money(v[1]), "receipts": len(v[2])}
        for (p, c), v in sorted(out.items())
    ]


def naive_totals(window):
    out = defaultdict(lambda: [Decimal(0), set()])
    for code, receipt_id, qty, price, disc in naive_rows(
        window, ["receipt__register__location__code", "receipt_id", "quantity", "unit_price", "discount"]
    ):
        out[code][0] += qty * price - disc
        out[code][1].add(receipt_id)
    return {code: (money(v[0]), len(v[1])) for code, v in out.items()}


def naive_comparison(window):
    now, before = naive_totals(window), naive_totals(window.previous())
    return {code: (now.get(code), before.get(code)) for code in sorted(now.keys() | before.keys())}


def naive_by_article(window):
    out = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for sku, qty, price, disc in naive_rows(window, ["article__sku", "quantity", "unit_price", "discount"]):
        out[sku][0] += qty
        out[sku][1] += qty * price - disc
    return out


def naive_top(window, limit):
    out = naive_by_article(window)
    ranked = sorted(out.items(), key=lambda kv: (-kv[1][1], kv[0]))[:limit]
    return [(sku, v[0].quantize(QTY), money(v[1])) for sku, v in ranked]


def naive_stock_by_article():
    from posinv.models import StockLevel

    stock = defaultdict(Decimal)
    for sku, on_hand in StockLevel.objects.values_list("article__sku", "on_hand").iterator(chunk_size=10000):
        stock[sku] += on_hand
    return stock


def naive_bottom(window, limit):
    sold, stock = naive_by_article(window), naive_stock_by_article()
    ranked = sorted(
        ((sku, sold[sku][0] if sku in sold else Decimal(0)) for sku, on_hand in stock.items() if on_hand > 0),
        key=lambda kv: (kv[1], kv[0]),
    )[:limit]
    return [(sku, qty.quantize(QTY)) for sku, qty in ranked]


def naive_sell_through(window, limit):
    sold, stock = naive_by_article(window), naive_stock_by_article()
    rows = []
    for sku in sold.keys() | stock.keys():
        s, h = (sold[sku][0] if sku in sold else Decimal(0)), stock.get(sku, Decimal(0))
        if s + h > 0 and (sku in sold or h > 0):
            rows.append((sku, 100 * s / (s + h)))
    ranked = sorted(rows, key=lambda r: (-r[1], r[0]))[:limit]
    return [(sku, pct.quantize(Decimal("0.1"))) for sku, pct in ranked]


def naive_margin(window, limit):
    from backoffice.models import SupplierArticle

    cost = dict(SupplierArticle.objects.filter(preferred=True, cost__isnull=False).values_list("article__sku", "cost"))
    sold = naive_by_article(window)
    rows = [(sku, money(v[1]) - money(v[0] * cost[sku])) for sku, v in sold.items() if sku in cost]
    return sorted(rows, key=lambda r: (-r[1], r[0]))[:limit]


def naive_stock_cover(window, limit):
    from posinv.models import StockLevel

    sold = defaultdict(Decimal)
    for sku, code, qty in naive_rows(window, ["article__sku", "receipt__register__location__code", "quantity"]):
        sold[(sku, code)] += qty
    levels = {
        (sku, code): on_hand
        for sku, code, on_hand in StockLevel.objects.values_list("article__sku", "location__code", "on_hand").iterator(
            chunk_size=10000
        )
    }
    rows = []
    for pair, qty in sold.items():
        if qty > 0 and pair in levels:
            on_hand = levels[pair]
            cover = Decimal(0) if on_hand <= 0 else on_hand * window.days / qty
            rows.append((pair[0], pair[1], cover.quantize(Decimal("0.1"))))
    return sorted(rows, key=lambda r: (r[2], r[0], r[1]))[:limit]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--articles", type=int, default=5_000)
    parser.add_argument("--locations", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("bench/reports.py skipped: it needs PostgreSQL (set DATABASE_URL=postgres://...)")
        return
    django_for_bench("reports")

    from django.db import connection
    from django.utils import timezone

    from backoffice.models import RollupState, SalesDay
    from backoffice.selectors import reports as q
    from backoffice.services.rollup import sales_rollup_rebuild

    end = timezone.localdate()
    generate(lines=args.lines, articles=args.articles, locations=args.locations, days=args.days, end=end)
    started = time.perf_counter()
    rolled = sales_rollup_rebuild(chunk_days=31)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(
        f"rollup rebuilt: {rolled.days} days, {SalesDay.objects.count():,} (day, location, article) rows "
        f"in {time.perf_counter() - started:.1f} s; complete through {rolled.complete_through}"
    )
    through = rolled.complete_through
    from backoffice.services.rollup import sales_rollup_days

    started = time.perf_counter()
    sales_rollup_days(days=[end])
    print(f"incremental run re-rolling today (its month and running totals): {time.perf_counter() - started:.2f} s")

    def raw(func):
        """The old path: the rollup's state hidden, every day read from the lines."""

        def run():
            RollupState.objects.filter(name="sales").update(complete_through=None)
            try:
                return func()
            finally:
                RollupState.objects.filter(name="sales").update(complete_through=through)

        return run

    month = q.window_make(date_from=end - timedelta(days=29), date_to=end)
    year = q.window_make(date_from=end - timedelta(days=args.days - 1), date_to=end)
    limit = 20

    def same(shape):
        return lambda r: r if shape is None else shape(r)

    top = lambda r: [(x["sku"], x["quantity"], x["revenue"]) for x in r]  # noqa: E731
    comparison = lambda r: {  # noqa: E731
        x["location"]: ((x["revenue"], x["receipts"]), (x["previous_revenue"], x["previous_receipts"])) for x in r[:-1]
    }
    cases = [
        ("sales by day and location, 30 days", lambda: q.sales_by_period(window=month, granularity="day"),
         lambda: naive_sales_by_period(month), None),
        ("comparison with previous 30 days", lambda: q.sales_comparison(window=month),
         lambda: naive_comparison(month), comparison),
        ("top articles, 30 days", lambda: q.articles_ranked(window=month, limit=limit),
         lambda: naive_top(month, limit), top),
        ("slow movers, 30 days", lambda: q.articles_ranked(window=month, bottom=True, limit=limit),
         lambda: naive_bottom(month, limit), lambda r: [(x["sku"], x["quantity"]) for x in r]),
        ("sell-through, 30 days", lambda: q.sell_through(window=month, limit=limit),
         lambda: naive_sell_through(month, limit), lambda r: [(x["sku"], x["sell_through_pct"]) for x in r]),
        ("margin, 30 days", lambda: q.margins(window=month, limit=limit),
         lambda: naive_margin(month, limit), lambda r: [(x["sku"], x["margin"]) for x in r]),
        ("days of cover, 30 days", lambda: q.stock_cover(window=month, limit=limit, today=end),
         lambda: naive_stock_cover(month, limit), lambda r: [(x["sku"], x["location"], x["days_of_cover"]) for x in r]),
        ("sales by month and location, year", lambda: q.sales_by_period(window=year, granularity="month"), None, None),
        ("sales by day and location, year", lambda: q.sales_by_period(window=year, granularity="day"), None, None),
        ("comparison with previous year", lambda: q.sales_comparison(window=year), None, None),
        ("top articles, year", lambda: q.articles_ranked(window=year, limit=limit),
         lambda: naive_top(year, limit), top),
        ("slow movers, year", lambda: q.articles_ranked(window=year, bottom=True, limit=limit), None, None),
        ("revenue per category, year", lambda: q.sales_by_category(window=year), None, None),
        ("sell-through, year", lambda: q.sell_through(window=year, limit=limit), None, None),
        ("margin, year", lambda: q.margins(window=year, limit=limit), None, None),
        ("days of cover, year", lambda: q.stock_cover(window=year, limit=limit, today=end), None, None),
    ]
    print(f"\n{'report':38} {'rollup':>8} {'old raw':>8} {'naive':>8} {'raw/rollup':>10} {'naive/rollup':>12}  same")
    slowest = 0.0
    for name, fast, naive, shape in cases:
        db_time, db_result = timed(fast, args.repeat)
        raw_time, raw_result = timed(raw(fast), 1)
        slowest = max(slowest, db_time)
        ok = db_result == raw_result
        naive_cols = f"{'-':>8} {'-':>10}"
        if naive is not None:
            naive_time, naive_result = timed(naive, 1)
            ok = ok and same(shape)(db_result) == naive_result
            naive_cols = f"{naive_time * 1000:6.0f}ms {naive_time / db_time:9.1f}x"
        print(
            f"{name:38} {db_time * 1000:6.0f}ms {raw_time * 1000:6.0f}ms {naive_cols.split()[0]:>8} "
            f"{raw_time / db_time:9.1f}x {naive_cols.split()[1]:>12}  {ok}"
        )
        if not ok:
            print(f"  MISMATCH: rollup {str(db_result)[:300]}\n  raw {str(raw_result)[:300]}")
    print(f"\nslowest report query: {slowest * 1000:.0f} ms (target < 1000 ms) -> {'PASS' if slowest < 1 else 'FAIL'}")
    with open("/proc/loadavg") as f:
        print(f"load average at the end: {f.read().split()[:3]} (2 cores)")


if __name__ == "__main__":
    main()
