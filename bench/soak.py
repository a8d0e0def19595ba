"""Soak: 50 registers pushing and 20 live tills selling for 5 minutes while
2 rqworkers feed 3 carts (2 Shopify, 1 WooCommerce fakes on real HTTP),
against a gunicorn server on PostgreSQL and Redis. Prints throughput, p50/p99
per call kind, the memory (RSS) of each process at start and end, and the
zero-loss check (every receipt, entry and sale stored once, the ledger
invariant, each cart equal to the ledger); exits 1 if anything was lost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/posinv_h REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/soak.py            # --registers 50 --tills 20 --seconds 300

The short version runs in the suite: tests/reliability/test_load.py."""
from __future__ import annotations

import argparse
import json
import os
import sys

from _setup import django_for_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=int, default=50)
    parser.add_argument("--tills", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--push-every", type=float, default=2.0, help="seconds between a register's pushes")
    parser.add_argument("--sell-every", type=float, default=1.0, help="seconds between a till's sales")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("soak skipped: it needs real workers, DATABASE_URL=postgres://... and REDIS_URL=redis://...")
        return
    # Its own Redis database (flushed): never the one REDIS_URL names for the site.
    base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    redis_url = f"{base}/{os.environ.get('SOAK_REDIS_DB', '10')}"
    os.environ["REDIS_URL"] = redis_url
    django_for_bench("soak")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    from tests.support.loadrun import load_run

    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    result = load_run(database_url=os.environ["DATABASE_URL"], redis_url=redis_url, registers=args.registers,
                      tills=args.tills, seconds=args.seconds, workers=args.workers, web_workers=args.web_workers,
                      push_every=args.push_every, sell_every=args.sell_every)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(json.dumps(result, indent=1))
    print(f"throughput: {result['push_per_s']} pushes/s = {result['lines_per_s']} register lines/s, "
          f"{result['sales_per_s']} live sales/s over {result['seconds']} s")
    print(f"p50/p99: push {result['push_p50_ms']}/{result['push_p99_ms']} ms, "
          f"sale {result['sale_p50_ms']}/{result['sale_p99_ms']} ms")
    for name in result["memory_mb_start"]:
        print(f"RSS {name}: {result['memory_mb_start'][name]} MB at start, {result['memory_mb_end'][name]} MB at end")
    lost = (result["receipts_missing"] or result["receipts_stored"] != result["receipts_sent"]
            or result["entries_applied"] != result["entries_sent"] or result["live_sales_stored"] != result["sales"]
            or result["drift"] or not result["carts_converged"] or result["stack_failed"])
    print("zero loss: " + ("NO" if lost else "yes") + f" (carts settled {result['settle_seconds']} s after the load)")
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
