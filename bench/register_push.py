"""Register push over real HTTP: batches of entries vs one entry per request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_b \\
        .venv/bin/python bench/register_push.py [--lines 20000] [--batch 500] [--registers 2]

A main system on a fresh database (gunicorn, 2 sync workers) with 20
articles and N push registers. Each register's sales are receipts of 5
lines, written as the register node writes them: per receipt one `receipt`
entry, 5 `receipt_line` entries and one `payment_line` entry, numbered
gap-free. Then, in the same run, each register pushing its own entries in
order (registers in parallel, one client thread each, as real tills do):

- batched: 20,000 receipt lines (28,000 entries) in requests of 500 entries;
- naive: one entry per request, over fresh receipts with 2,000 lines (the
  rate is what matters; 20,000 of them would take minutes).

Every receipt line posts a sale move through the ledger. With
BENCH_REDIS_URL (a Redis database of the bench's own: it is flushed) the
change outbox is drained by an `rqworker` (SimpleWorker), as in production;
without it, in-process after each request. Prints receipt lines/s (and
entries/s) of both and the ratio, then checks that every line has its move
and that on_hand equals the sum of the moves."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._setup import CpuMeter, database_backends, django_for_bench, process_tree  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--registers", type=int, default=2)
    parser.add_argument("--naive-lines", type=int, default=2_000)
    args = parser.parse_args()
    vendor = django_for_bench("registers")

    import requests
    from django.db import connection

    from pos.services.transfer import register_create
    from posinv.models import Article, Location
    from tests.support.loadrun import (
        LINES_PER_RECEIPT,
        LoadClient,
        Outcome,
        Request,
        Summary,
        register_entries,
        run_clients,
    )
    from tests.support.processes import free_port, spawn, wait_until

    print(f"database: {vendor}; {os.cpu_count()} cores (shared by server, database and client); "
          f"load average {os.getloadavg()[0]:.1f}")
    Location.objects.create(code="S1", name="Store 1")
    skus = [f"SKU-{i:02d}" for i in range(20)]
    Article.objects.bulk_create([Article(sku=sku, name=f"bench {i}") for i, sku in enumerate(skus)])
    codes = [f"B{n}" for n in range(1, args.registers + 1)]
    tokens = {
        code: register_create(code=code, location_code="S1", records_per_run=max(args.batch, 1))[1] for code in codes
    }
    connection.close()

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "posinv-bench", "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
        "POSINV_VAR_DIR": os.environ.get("POSINV_VAR_DIR", "/tmp"),
    }
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    worker = None
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()  # the bench's own database only
        env["REDIS_URL"] = redis_url
        worker = spawn(
            [sys.executable, "manage.py", "rqworker", "high", "default", "--worker-class", "rq.worker.SimpleWorker"],
            env=env, name="bench-registers-worker",
        )
    print(f"jobs: {'RQ on ' + redis_url if redis_url else 'in-process'}")
    port = free_port()
    server = spawn(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "120"],
        env=env, name="bench-registers-server",
    )
    url = f"http://127.0.0.1:{port}"
    path = "/api/v1/registers"
    try:
        wait_until(lambda: requests.get(f"{url}{path}/B1/settings/", timeout=2,
                                        headers={"Authorization": f"Token {tokens['B1']}"}).ok,
                   timeout=60, message="the server")
        receipts_each = args.lines // LINES_PER_RECEIPT // len(codes)
        naive_receipts_each = max(args.naive_lines // LINES_PER_RECEIPT // len(codes), 1)
        batched = {c: register_entries(c, receipts=receipts_each, first_receipt=1, first_entry=1, skus=skus)
                   for c in codes}
        naive = {
            c: register_entries(c, receipts=naive_receipts_each, first_receipt=receipts_each + 1,
                                first_entry=len(batched[c]) + 1, skus=skus)
            for c in codes
        }
        def run(per_register: dict[str, list[dict]], size: int) -> tuple[float, int, Summary]:
            """Each register pushing its entries in order, `size` per request, all registers at once."""
            applied: dict[str, int] = dict.fromkeys(codes, 0)

            def pusher(code: str) -> LoadClient:
                entries = per_register[code]
                headers = {"Authorization": f"Token {tokens[code]}"}

                def request(n: int) -> Request | None:
                    chunk = entries[n * size:(n + 1) * size]
                    return Request.post_json(f"{path}/{code}/entries/", {"entries": chunk}, headers) if chunk else None

                def answered(outcome: Outcome, body: bytes) -> None:
                    if outcome.status != 200:
                        raise SystemExit(f"{code}: HTTP {outcome.status or outcome.error}: {body[:500].decode()}")
                    applied[code] += json.loads(body)["applied"]

                return LoadClient(request=request, accept=(200,), answered=answered)

            pushed = run_clients([pusher(code) for code in codes], url=url, timeout=120)
            return pushed.seconds, sum(applied.values()), pushed.summary(accept=(200,))

        def lines_in(per_register):
            return sum(1 for entries in per_register.values() for e in entries if e["table"] == "receipt_line")

        roots = [server.pid] + ([worker.pid] if worker is not None else [])
        backends = database_backends()

        def measured(per_register, size):
            # Server CPU (gunicorn, RQ worker, PostgreSQL backends), the client excluded.
            with CpuMeter({"server": lambda: process_tree(roots) | backends()}) as meter:
                outcome = run(per_register, size)
            return (*outcome, meter.seconds()["server"])

        batched_s, batched_applied, batched_lat, batched_cpu = measured(batched, args.batch)
        naive_s, naive_applied, naive_lat, naive_cpu = measured(naive, 1)
        b_lines, n_lines = lines_in(batched), lines_in(naive)
        b_entries, n_entries = sum(map(len, batched.values())), sum(map(len, naive.values()))
        assert batched_applied == b_entries and naive_applied == n_entries, (batched_applied, naive_applied)
        b_rate, n_rate = b_lines / batched_s, n_lines / naive_s
        print(f"batched: {b_lines} receipt lines ({b_entries} entries) from {len(codes)} registers in requests of "
              f"{args.batch} entries: {batched_s:.1f} s = {b_rate:,.0f} lines/s, {b_entries / batched_s:,.0f} "
              f"entries/s (p99 request {batched_lat.ms(0.99):.0f} ms)")
        print(f"naive:   {n_lines} receipt lines ({n_entries} entries), one entry per request: {naive_s:.1f} s = "
              f"{n_rate:,.0f} lines/s, {n_entries / naive_s:,.0f} entries/s (p99 request {naive_lat.ms(0.99):.0f} ms)")
        print(f"ratio batched / naive: {b_rate / n_rate:.1f}x  (targets: >= 5,000 lines/s and >= 20x)")
        cores = os.cpu_count() or 2
        print(f"server CPU per receipt line: batched {batched_cpu / b_lines * 1000:.3f} ms "
              f"(at most ~{cores * b_lines / batched_cpu:,.0f} lines/s on {cores} idle cores, client excluded); "
              f"naive {naive_cpu / n_lines * 1000:.2f} ms (~{cores * n_lines / naive_cpu:,.0f} lines/s); "
              f"load average now {os.getloadavg()[0]:.1f}")
        _check(b_lines + n_lines)
    finally:
        server.stop()
        if worker is not None:
            worker.stop()


def _check(lines: int) -> None:
    from django.db.models import Sum

    from pos.models import ReceiptLine
    from posinv.models import StockLevel, StockMove

    with_move = ReceiptLine.objects.filter(stock_move__isnull=False).count()
    levels = dict(StockLevel.objects.values_list("article_id", "on_hand"))
    sums = dict(StockMove.objects.values("article_id").annotate(s=Sum("quantity")).values_list("article_id", "s"))
    ok = with_move == lines and levels == sums
    print(f"check: {with_move} of {lines} lines have their sale move; on_hand = sum of moves for "
          f"{sum(levels[a] == sums.get(a) for a in levels)} of {len(levels)} articles")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
