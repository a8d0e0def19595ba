"""Live point-of-sale throughput over real HTTP.

A gunicorn main system on PostgreSQL; 20 concurrent till clients (each with
its own register token) post 3-line sales to POST /api/v1/sales/ for 60
seconds, half of them drawing from the same 10 hot articles, the other half
from 190 cold ones. Before that, the same clients call GET /api/v1/scan/
(an authenticated read: the HTTP + auth floor) as the baseline of the same
run. Prints sales/s, p50/p99 latency, the ratio to the baseline, and checks
after the run that the ledger holds (on_hand == sum of moves for every
pair; one receipt, one idempotency record and three sale moves per 201).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_e [BENCH_REDIS_URL=redis://127.0.0.1:6379/7] \
        .venv/bin/python bench/live_sales.py
    (options: --seconds 60 --clients 20 --workers 3 --baseline-seconds 15)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import sys
import time
from decimal import Decimal

from _setup import REPO, CpuMeter, database_backends, django_for_bench, process_tree

HOT = 10
COLD = 190


def _phase(port: int, tokens: list[str], codes: list[str], mode: str, seconds: float, processes: int) -> dict:
    """Every till (client `i`, token `tokens[i]`) scans or sells for `seconds`; even ones draw from the hot
    articles, odd ones from the cold."""
    from tests.support.loadrun import LoadClient, Request, run_clients

    def till(index: int, token: str) -> LoadClient:
        rng = random.Random(index)
        pool = codes[:HOT] if index % 2 == 0 else codes[HOT:]
        headers = {"Authorization": f"Token {token}"}

        def request(n: int) -> Request:
            if mode == "scan":
                return Request("GET", f"/api/v1/scan/{rng.choice(pool)}/", headers=headers)
            lines = [{"code": code, "quantity": "1", "price": "1.00"} for code in rng.sample(pool, 3)]
            key = {"Idempotency-Key": f"bench-{index}-{n}"}
            return Request.post_json("/api/v1/sales/", {"lines": lines}, {**headers, **key})

        return LoadClient(request=request)

    run = run_clients([till(i, token) for i, token in enumerate(tokens)], url=f"http://127.0.0.1:{port}",
                      seconds=seconds, processes=processes)
    summary = run.summary()
    return {
        "ok": summary.accepted,
        "rate": summary.rate,
        "p50": summary.ms(0.5) if summary.accepted else float("nan"),
        "p99": summary.ms(0.99) if summary.accepted else float("nan"),
        "errors": summary.errors,
    }


def _clients_cpu() -> float:
    """CPU seconds of this process and its finished children (the client processes of `_phase`)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _statements_per_sale(token: str, codes: list[str]) -> int:
    """SQL statements one 3-line sale costs on the server (measured in process, outside the timed phases)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    body = json.dumps({"lines": [{"code": code, "quantity": "1", "price": "1.00"} for code in codes[-3:]]})
    client.post("/api/v1/sales/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="count-warm")
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/sales/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="count")
    assert response.status_code == 201, response.content
    sqls = [q["sql"] for q in captured.captured_queries]
    # Up to the sale's last write (its idempotency record) and its COMMIT, if
    # any: the bench process dispatches the outbox inline afterwards, which
    # the server leaves to the RQ worker.
    last = max(i for i, sql in enumerate(sqls) if "posinv_live_sale_write" in sql or "retail_livesale" in sql)
    return last + 2 if sqls[last + 1 : last + 2] == ["COMMIT"] else last + 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--baseline-seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--client-processes", type=int, default=2)
    args = parser.parse_args()
    vendor = django_for_bench("live_sales")
    if vendor != "postgresql":
        # Not an error: `make bench` on SQLite runs the others and says why this one did not run.
        print("live_sales: skipped; it measures the main system on PostgreSQL (set DATABASE_URL=postgres://...)")
        return

    from django.db import connection, connections
    from django.utils import timezone

    from pos.models import CashRegister, Receipt
    from posinv.models import Article, Barcode, Location, Price, PriceGroup, StockChange, StockMove
    from posinv.selectors import ledger_drift
    from posinv.services.barcodes import gtin_check_digit
    from posinv.services.ledger import MoveSpec, StockOrigin, stock_moves_post
    from posinv.services.tokens import token_issue
    from retail.models import LiveSale
    from tests.support.processes import free_port, spawn, wait_until

    group = PriceGroup.objects.create(code="RETAIL", name="Retail")
    shop = Location.objects.create(code="S1", name="Bench shop")
    codes = []
    for i in range(HOT + COLD):
        body = f"400{i:09d}"
        codes.append(body + str(gtin_check_digit(body)))
    Article.objects.bulk_create(Article(sku=f"LS-{i:04d}", name=f"Live {i}") for i in range(HOT + COLD))
    articles = list(Article.objects.order_by("sku"))
    Barcode.objects.bulk_create(
        Barcode(article=a, code=code, gtin=code.zfill(14)) for a, code in zip(articles, codes, strict=True)
    )
    Price.objects.bulk_create(
        Price(article=a, group=group, amount=Decimal("1.00"), valid_from=timezone.localdate()) for a in articles
    )
    stock_moves_post(
        moves=[
            MoveSpec(
                kind="receipt",
                idempotency_key=f"seed-{a.pk}",
                quantity=Decimal(1_000_000),
                article_id=a.pk,
                location_id=shop.pk,
            )
            for a in articles
        ],
        origin=StockOrigin(kind="user", code="bench"),
    )
    CashRegister.objects.bulk_create(
        CashRegister(code=f"R{i:02d}", location=shop, price_group=group) for i in range(args.clients)
    )
    tokens = [token_issue(kind="register", subject=f"R{i:02d}") for i in range(args.clients)]
    statements = _statements_per_sale(tokens[0], codes)
    connections.close_all()

    # Production shape: change wake-ups go to RQ and a worker drains the
    # outbox (every other channel hears of each sale), on a Redis database
    # of this bench's own.
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "posinv-bench",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": redis_url,
    }
    server = spawn(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--timeout",
            "60",
            "--backlog",
            "2048",
        ],
        env=env,
        name="bench-live-sales",
    )
    worker = spawn(
        [sys.executable, "manage.py", "rqworker", "high", "default", "low", "--worker-class", "rq.worker.SimpleWorker"],
        env=env,
        name="bench-live-sales-worker",
    )
    try:
        wait_until(
            lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/api/schema/") or True,
            timeout=60,
            message="gunicorn to listen",
        )
        # Warm every worker (imports, connections) before measuring.
        _phase(port, tokens, codes, "scan", 3, args.client_processes)
        print(
            f"live_sales: {args.clients} clients, {args.workers} gunicorn workers, {os.cpu_count()} cores, PostgreSQL",
            flush=True,
        )
        base = _phase(port, tokens, codes, "scan", args.baseline_seconds, args.client_processes)
        print(
            f"baseline GET /scan/ : {base['rate']:8.1f} req/s   p50 {base['p50']:6.1f} ms   "
            f"p99 {base['p99']:6.1f} ms   errors {base['errors']}",
            flush=True,
        )
        groups = {
            "web (gunicorn)": lambda: process_tree([server.pid]),
            "rqworker": lambda: process_tree([worker.pid]),
            "PostgreSQL": database_backends(),
        }
        clients_before = _clients_cpu()
        with CpuMeter(groups) as meter:
            sales = _phase(port, tokens, codes, "sale", args.seconds, args.client_processes)
        used = meter.seconds()
        used["clients"] = _clients_cpu() - clients_before
        print(
            f"POST /sales/ 3 lines: {sales['rate']:8.1f} sales/s p50 {sales['p50']:6.1f} ms   "
            f"p99 {sales['p99']:6.1f} ms   errors {sales['errors']}   ({sales['ok']} sales in {args.seconds:.0f} s)"
        )
        per_sale = {name: seconds * 1000 / max(sales["ok"], 1) for name, seconds in used.items()}
        ceiling = 1000 * (os.cpu_count() or 2) / sum(per_sale.values())
        print(
            "CPU per sale: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_sale.items())
            + f"; total {sum(per_sale.values()):.2f} ms -> at most {ceiling:.0f} sales/s "
            f"on {os.cpu_count()} cores fully used"
        )
        print(f"ratio sales/s to scan/s (same run): {sales['rate'] / base['rate']:.2f}")
        print(
            f"target: >= 500 sales/s with p99 < 100 ms -> "
            f"{'met' if sales['rate'] >= 500 and sales['p99'] < 100 else 'NOT met'}"
        )
        connection.connect()
        drained = time.time()
        wait_until(lambda: not StockChange.objects.exists(), timeout=120, message="the change outbox to drain")
        print(f"change outbox drained {time.time() - drained:.1f} s after the last sale")
    finally:
        server.stop()
        worker.stop()

    drifting = sum(1 for _ in ledger_drift())
    receipts = Receipt.objects.count()
    live = LiveSale.objects.count()
    sale_moves = StockMove.objects.filter(kind="sale").count()
    print(
        f"ledger check: {drifting} drifting pairs; {receipts} receipts, {live} idempotency records, "
        f"{sale_moves} sale moves for {sales['ok']} answered sales (+2 in-process sales counting statements)"
    )
    print(f"SQL statements per 3-line sale (server side, any BEGIN/SAVEPOINT/COMMIT included): {statements}")
    if drifting or not (receipts == live == sales["ok"] + 2 and sale_moves == 3 * (sales["ok"] + 2)):
        sys.exit("ledger invariant broken")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
